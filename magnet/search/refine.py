"""Refine a found latent with Adam in W+ through the differentiable CLIP score (optional, after the search).

CLIP is scored on random cutouts with flips and a little noise, so the gradient cannot settle on adversarial
pixel patterns of one fixed view; an optional discriminator term (as CLIP-GLaSS) keeps the image realistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from magnet.checks import check_float, check_int


def cutouts(images: torch.Tensor, n: int, size: int, min_fraction: float, rng: torch.Generator):
    """n random square crops per image (side between min_fraction and 1 of the image), flipped at random
    and resized to `size`; differentiable with respect to `images`."""
    h, w = images.shape[-2:]
    crops = []
    for _ in range(n):
        side = int(min(h, w) * (min_fraction + (1 - min_fraction) * float(torch.rand((), generator=rng))))
        top = int(torch.randint(0, h - side + 1, (), generator=rng))
        left = int(torch.randint(0, w - side + 1, (), generator=rng))
        crop = images[..., top : top + side, left : left + side]
        if float(torch.rand((), generator=rng)) < 0.5:
            crop = crop.flip(-1)
        crops.append(
            F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        )
    return torch.cat(crops)


@dataclass
class Refiner:
    """Adam on the W+ latent for `steps` steps; steps=0 turns refinement off."""

    steps: int = 0
    lr: float = 0.01
    num_cutouts: int = 8
    cut_min: float = 0.5  # smallest cutout side, as a fraction of the image side
    noise: float = 0.02  # std of the Gaussian noise added to the cutouts
    realism_weight: float = 0.0  # weight of the discriminator's non-saturating loss; needs a discriminator

    def __post_init__(self):
        check_int("steps", self.steps, at_least=0)
        check_float("lr", self.lr, above=0)
        check_int("num_cutouts", self.num_cutouts, at_least=1)
        check_float("cut_min", self.cut_min, above=0, at_most=1)
        check_float("noise", self.noise, at_least=0)
        check_float("realism_weight", self.realism_weight, at_least=0)

    def run(self, space, objective, latent, rng: torch.Generator, discriminator=None, progress=None):
        """latent in `space` -> the best W+ latent (n_latent, style_dim) seen, the start included, on the CPU.

        Every latent visited is scored as the search scores it (the objective on the whole image, without
        cutouts or noise), so refining never hands back a painting that scores below the one it started from.
        """
        if self.realism_weight and discriminator is None:
            raise ValueError(
                "refine.realism_weight > 0 needs a discriminator; set it to 0 or load a checkpoint with 'd'"
            )
        with torch.no_grad():
            ws = space.to_ws(latent[None]).detach().clone()
        ws.requires_grad_(True)
        optimizer = torch.optim.Adam([ws], lr=self.lr)
        size = getattr(getattr(objective, "clip", None), "image_size", 224)  # CLIP input size
        task = (
            progress.add_task("refine", total=self.steps, best=float("nan"), mean=float("nan"))
            if progress
            else None
        )
        best_score, best_ws = -math.inf, ws.detach().clone()
        for step in range(self.steps + 1):
            with torch.set_grad_enabled(step < self.steps):
                images = space.generator.synthesis(ws, noise_mode="const")
            with torch.no_grad():
                whole = float(objective(images.detach())[0])
            if whole > best_score:  # NaN (a diverged step) never is
                best_score, best_ws = whole, ws.detach().clone()
            if step == self.steps:
                break
            views = cutouts(images, self.num_cutouts, size, self.cut_min, rng)
            views = views + self.noise * torch.randn(views.shape, generator=rng).to(views.device)
            score = objective(views).mean()
            loss = -score
            if self.realism_weight:
                loss = loss + self.realism_weight * F.softplus(-discriminator(images)).mean()
            # autograd.grad touches only ws: the generator's and CLIP's .grad stay untouched (training-safe).
            (grad,) = torch.autograd.grad(loss, [ws])
            ws.grad = grad
            optimizer.step()
            if task is not None:
                progress.update(task, advance=1, best=best_score, mean=score.item())
        return best_ws[0].cpu()
