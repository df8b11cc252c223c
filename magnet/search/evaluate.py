"""Render latents and score them in batches, with a progress bar per generation (best and mean score)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from magnet.checks import check_bool, check_int
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


class Evaluator:
    """Scores latents of a `LatentSpace` with an objective, `batch_size` renders at a time; counts renders.

    `precision` (fp32 | bf16 | auto) is that of the renders and of the objective; with `preview` candidates are
    rendered and scored at the space's `preview_size` (one block below the top) instead of full size.
    """

    def __init__(self, space, objective, batch_size: int = 20, thumb_size: int = 128, progress=None,
                 precision: str = "fp32", preview: bool = False):
        check_int("batch_size", batch_size, at_least=1)
        check_bool("preview", preview)
        self.space = space
        self.objective = objective
        self.batch_size = batch_size
        self.thumb_size = thumb_size
        self.progress = progress
        self.precision = resolve(precision, space.device)
        self.size = space.preview_size if preview else None
        self.renders = 0

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, label: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """latents (N, ...) -> scores (N,) float32 and thumbnails (N, 3, t, t) uint8, both on the CPU."""
        task = None
        if self.progress is not None:
            task = self.progress.add_task(label, total=len(latents), best=float("nan"), mean=float("nan"))
        scores, thumbs = [], []
        for start in range(0, len(latents), self.batch_size):
            images = self.space.render(latents[start : start + self.batch_size], self.size, self.precision)
            with autocast(self.precision, images.device):
                scores.append(self.objective(images).float().cpu())
            thumbs.append(to_uint8(self._thumbnail(images)).cpu())
            self.renders += len(images)
            if task is not None:
                seen = torch.cat(scores)
                self.progress.update(
                    task, advance=len(images), best=float(seen.max()), mean=float(seen.mean())
                )
        return torch.cat(scores), torch.cat(thumbs)

    def _thumbnail(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == self.thumb_size:
            return images
        size = (self.thumb_size, self.thumb_size)
        return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
