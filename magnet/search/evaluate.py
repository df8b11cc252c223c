"""Render latents and score them in batches, with a progress bar per generation (best and mean score), and
screen a large population on cheap previews first."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from magnet.checks import check_int
from magnet.images import to_uint8
from magnet.precision import autocast, resolve


def make_progress() -> Progress:
    """A rich progress display with one bar per generation."""
    return Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]:+.4f}  mean {task.fields[mean]:+.4f}"),
        TimeElapsedColumn(),
    )


@dataclass
class Screen:
    """Screening of the initial population: every candidate is scored on a preview `preview_size` px wide (the
    generator's image a few blocks below the top, a fraction of the cost), and only the `keep` best are
    rendered and scored at full size; the others are dropped. keep 0: no screening.

    The initial population is random samples whose scores differ widely, so a cheap render ranks them well
    enough to find the parents; children differ in detail and are always scored at full size.
    """

    preview_size: int = 128
    keep: int = 20

    def __post_init__(self):
        check_int("preview_size", self.preview_size, at_least=4)
        check_int("keep", self.keep, at_least=0)


class Evaluator:
    """Scores latents of a `LatentSpace` with an objective, `batch_size` renders at a time; counts renders.

    `precision` (fp32 | bf16 | auto) is that of the renders and of the objective; `screen` (a Screen, or None
    for none) says how `screen()` narrows a population down before it is scored at full size.
    """

    def __init__(self, space, objective, batch_size: int = 20, thumb_size: int = 128, progress=None,
                 precision: str = "fp32", screen: Screen | None = None):
        check_int("batch_size", batch_size, at_least=1)
        self.space = space
        self.objective = objective
        self.batch_size = batch_size
        self.thumb_size = thumb_size
        self.progress = progress
        self.precision = resolve(precision, space.device)
        self.screening = screen if screen is not None else Screen(keep=0)
        self.renders = 0  # at full size
        self.previews = 0

    def screen(self, latents: torch.Tensor, label: str = "") -> torch.Tensor | None:
        """Indices (ascending, so the candidates keep their order) of the `keep` latents whose previews score
        best; None when there is nothing to screen (screening off, no more latents than `keep`, or a generator
        too small for a preview of that size)."""
        size = self.space.preview_size(self.screening.preview_size)
        if not self.screening.keep or len(latents) <= self.screening.keep or size is None:
            return None
        scores = self._score(latents, size, f"{label} ({size} px)", thumbnails=False)[0]
        self.previews += len(latents)
        return torch.argsort(scores, descending=True, stable=True)[: self.screening.keep].sort().values

    def __call__(self, latents: torch.Tensor, label: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """latents (N, ...) -> full-size scores (N,) float32 and thumbnails (N, 3, t, t) uint8, on the CPU."""
        scores, thumbs = self._score(latents, None, label)
        self.renders += len(latents)
        return scores, thumbs

    @torch.no_grad()
    def _score(self, latents, size: int | None, label: str, thumbnails: bool = True):
        task = None
        if self.progress is not None:
            task = self.progress.add_task(label, total=len(latents), best=float("nan"), mean=float("nan"))
        scores, thumbs = [], []
        for start in range(0, len(latents), self.batch_size):
            images = self.space.render(latents[start : start + self.batch_size], size, self.precision)
            with autocast(self.precision, images.device):
                scores.append(self.objective(images).float().cpu())
            if thumbnails:
                thumbs.append(to_uint8(self._thumbnail(images)).cpu())
            if task is not None:
                seen = torch.cat(scores)
                self.progress.update(
                    task, advance=len(images), best=float(seen.max()), mean=float(seen.mean())
                )
        return torch.cat(scores), torch.cat(thumbs) if thumbnails else None

    def _thumbnail(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == self.thumb_size:
            return images
        size = (self.thumb_size, self.thumb_size)
        return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
