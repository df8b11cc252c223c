"""Latent spaces the search moves in: z (on the sphere of a Gaussian sample), W or W+ (after the mapping)."""

from __future__ import annotations

import math

import torch

from magnet.checks import check_choice
from magnet.precision import autocast

SPACES = ("z", "w", "w+")


def check_space(name: str) -> None:
    check_choice("space", name, SPACES)


class LatentSpace:
    """Samples, projects and renders latents of one generator; latents live on the CPU in float32.

    z vectors are kept at norm sqrt(dim), the typical norm of a Gaussian sample. MAGnet rescaled its children
    to norm 100 while the sampled parents kept ~22.6, which weakened the mutation fourfold after the first
    generation; the mapping network's PixelNorm makes the norm invisible in the image, so fixing it is free.
    """

    def __init__(self, generator, name: str = "z", truncation_psi: float = 1.0):
        check_space(name)
        self.generator = generator
        self.name = name
        self.truncation_psi = float(truncation_psi)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """n random latents: z ~ N(0, I) projected to the sphere, or their W / W+ images."""
        z = self.project_z(torch.randn(n, self.generator.style_dim, generator=rng))
        if self.name == "z":
            return z
        ws = self._map(z)
        return ws[:, 0] if self.name == "w" else ws

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        """Bring offspring back to where samples live: the sqrt(dim) sphere in z; W and W+ are unbounded."""
        return self.project_z(latents) if self.name == "z" else latents

    @staticmethod
    def project_z(z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(z, dim=-1) * math.sqrt(z.shape[-1])

    def noise_scale(self, population: torch.Tensor) -> torch.Tensor:
        """Unit of the mutation: 1 in z (a Gaussian's std); in W / W+ the population's per-dimension std."""
        if self.name == "z":
            return torch.ones(())
        flat = population.reshape(-1, population.shape[-1])
        return flat.std(dim=0).clamp_min(1e-8)

    @torch.no_grad()
    def _map(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.generator.mapping(z.to(self.device), truncation_psi=self.truncation_psi)
        return ws.float().cpu()

    def to_ws(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> W+ (N, n_latent, style_dim) on the generator's device."""
        if self.name == "z":
            return self.generator.mapping(latents.to(self.device), truncation_psi=self.truncation_psi)
        latents = latents.to(self.device)
        if self.name == "w":
            return latents[:, None].expand(-1, self.generator.n_latent, -1)
        return latents

    def preview_size(self, at_least: int) -> int | None:
        """px of the cheapest preview at least `at_least` px wide: the smallest of the generator's image sizes
        (one per block) from there up; None when only the full size is that large."""
        size = min((s for s in self.generator.image_sizes if s >= at_least), default=self.generator.size)
        return None if size >= self.generator.size else size

    def render(self, latents: torch.Tensor, size: int | None = None, precision: str = "fp32") -> torch.Tensor:
        """Latents -> images (N, 3, size, size) with the stored noise, so a latent is always one picture.

        `size` (one of the generator's `image_sizes`; None: full size) stops the synthesis early, as a preview;
        `precision` (fp32 | bf16 | auto) is that of the synthesis, the mapping stays in float32.
        """
        ws = self.to_ws(latents)
        with autocast(precision, self.device):
            images = self.generator.synthesis(ws, noise_mode="const", stop_at=size)
        return images.float()

    @torch.no_grad()
    def render_one(self, latent) -> torch.Tensor:
        """One latent (a tensor, or a list as stored in PNG metadata) -> its (3, size, size) image on the CPU."""
        return self.render(torch.as_tensor(latent, dtype=torch.float32)[None])[0].cpu()
