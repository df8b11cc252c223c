"""Truncation sweep: one latent pulled towards (psi < 1) or pushed away from (psi > 1) the average w."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from magnet.checks import check_float, check_text
from magnet.errors import ConfigError, UserError
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.grid import GridLayout, labelled_grid
from magnet.explore.render import check_frame_settings, check_source, painting_paths, source_ws, synthesize, to_frame


def truncate(generator, ws: torch.Tensor, psis: list[float], mapped_psi: float = 1.0) -> torch.Tensor:
    """W+ (P, n_latent, D) of `ws` (mapped with `mapped_psi`) at each absolute psi: w_avg + psi (w - w_avg) of its
    untruncated w, so psi = mapped_psi gives `ws` back."""
    if mapped_psi == 0:
        raise UserError("a latent truncated at psi 0 is the average w: it has nothing left to sweep")
    w_avg = generator.w_avg.to(ws)
    scale = torch.tensor(psis, dtype=ws.dtype, device=ws.device).view(-1, 1, 1) / mapped_psi
    return w_avg + scale * (ws[None] - w_avg)


def truncation_strip(generator, source=0, psis=(0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5), size: int | None = None,
                     levels: bool = False, batch_size: int = 8, progress=None) -> tuple[Image.Image, GridLayout]:
    """One seed's or painting.png's image at each psi, left to right, labelled."""
    ws, mapped_psi, label = source_ws(generator, source)
    frames = [to_frame(image, size, levels)
              for image in synthesize(generator, truncate(generator, ws, list(psis), mapped_psi), batch_size, progress)]
    return labelled_grid([frames], [f"psi {psi:g}" for psi in psis], [""], f"{label}: truncation")


@dataclass
class TruncationSettings(Tool):
    """python explore.py explore=truncation explore.source=7 'explore.psis=[0,0.5,1,1.5]'"""

    source: int | str = 0          # a seed or a painting.png path
    psis: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    size: int | None = None        # px of a cell; null: the generator's
    levels: bool = False           # auto-levels per cell (as painting.png)
    batch_size: int = 8
    name: str = "truncation"

    def __post_init__(self):
        check_source("source", self.source)
        if not isinstance(self.psis, list | tuple) or not self.psis:
            raise ConfigError("psis", self.psis, "a non-empty list of numbers")
        for i, psi in enumerate(self.psis):
            check_float(f"psis[{i}]", psi, at_least=-2, at_most=3)
        check_frame_settings(self.size, self.levels, self.batch_size)
        check_text("name", self.name)

    def inputs(self) -> list[Path]:
        return painting_paths([self.source])

    def run(self, context: ExploreContext) -> Path:
        strip, _ = truncation_strip(context.generator, self.source, self.psis, self.size, self.levels,
                                    self.batch_size, context.progress_for("truncation"))
        path = context.out_dir / f"{self.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        strip.save(path)
        return path
