"""Style mixing figure (as NVlabs'): each row's latent with a range of W+ layers taken from each column's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from magnet.checks import check_float, check_text
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.grid import GridLayout, labelled_grid
from magnet.explore.layers import check_layers, check_ranges, describe_span, layer_span
from magnet.explore.render import check_frame_settings, check_sources, painting_paths, source_ws, synthesize, to_frame


def mix(row_ws: torch.Tensor, col_ws: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """W+ (R, C, n_latent, D): row r's W+ with layers first..last (inclusive) of column c's."""
    mixed = row_ws[:, None].repeat(1, len(col_ws), 1, 1)
    mixed[:, :, first : last + 1] = col_ws[None, :, first : last + 1]
    return mixed


def mixing_grid(generator, rows: list, columns: list, layers=None, ranges: dict | None = None,
                truncation_psi: float = 1.0, size: int | None = None, levels: bool = False, batch_size: int = 8,
                progress=None) -> tuple[Image.Image, GridLayout]:
    """The figure for sources (seeds or painting.png paths): the column images on top, the row images on the
    left, row r mixed with column c in cell (r + 1, c + 1). `layers`: a name of `ranges`, [first, last] or None."""
    first, last = layer_span(generator, layers, ranges or {})
    row_sources = [source_ws(generator, s, truncation_psi) for s in rows]
    col_sources = [source_ws(generator, s, truncation_psi) for s in columns]
    row_ws = torch.stack([ws for ws, _, _ in row_sources]).cpu()
    col_ws = torch.stack([ws for ws, _, _ in col_sources]).cpu()
    mixed = mix(row_ws, col_ws, first, last).flatten(0, 1)
    frames = [to_frame(image, size, levels)
              for image in synthesize(generator, torch.cat([col_ws, row_ws, mixed]), batch_size, progress)]
    C, R = len(columns), len(rows)
    cells = [[None, *frames[:C]]]
    for r in range(R):
        cells.append([frames[C + r], *frames[C + R + r * C : C + R + (r + 1) * C]])
    name = f" ({layers})" if isinstance(layers, str) else ""
    title = f"rows with {describe_span(generator, first, last)}{name} of the columns"
    return labelled_grid(cells, ["", *(label for _, _, label in col_sources)],
                         ["", *(label for _, _, label in row_sources)], title)


@dataclass
class MixingSettings(Tool):
    """python explore.py explore=mixing explore.rows=[1,2,3] explore.columns=[4,5] explore.layers=middle"""

    rows: list = field(default_factory=lambda: [0, 1, 2])      # seeds or painting.png paths
    columns: list = field(default_factory=lambda: [3, 4, 5])   # seeds or painting.png paths: their layers go in
    layers: str | list[int] | None = "coarse"  # a name of `ranges`, [first, last] W+ indices, or null (all)
    ranges: dict = field(default_factory=lambda: {"coarse": [4, 8], "middle": [16, 32], "fine": [64, 1024]})
    truncation_psi: float = 1.0    # for seeds (paintings keep theirs)
    size: int | None = None        # px of a cell; null: the generator's
    levels: bool = False           # auto-levels per cell (as painting.png)
    batch_size: int = 8
    name: str = "mixing"

    def __post_init__(self):
        check_sources("rows", self.rows)
        check_sources("columns", self.columns)
        check_ranges("ranges", self.ranges)
        check_layers("layers", self.layers, self.ranges)
        check_float("truncation_psi", self.truncation_psi)
        check_frame_settings(self.size, self.levels, self.batch_size)
        check_text("name", self.name)

    def inputs(self) -> list[Path]:
        return painting_paths([*self.rows, *self.columns])

    def run(self, context: ExploreContext) -> Path:
        grid, _ = mixing_grid(context.generator, self.rows, self.columns, self.layers, self.ranges,
                              self.truncation_psi, self.size, self.levels, self.batch_size,
                              context.progress_for("mixing"))
        path = context.out_dir / f"{self.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
        return path
