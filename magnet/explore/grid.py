"""Labelled image grids (mixing, truncation, SeFa figures) and captions written on video frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

LABEL_H = 14  # px of a text band
PAD = 4  # px around a label's text


@dataclass(frozen=True)
class GridLayout:
    """Where cell (row, col) of a grid sits: after a title band, a column-label band and a row-label band."""

    cell: int
    top: int   # px above the first row: title and column labels
    left: int  # px left of the first column: row labels

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """(x, y) of the cell's top-left pixel."""
        return self.left + col * self.cell, self.top + row * self.cell


def _text_width(text: str) -> int:
    return int(np.ceil(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text))) if text else 0


def labelled_grid(cells: list[list[np.ndarray | None]], col_labels: list[str], row_labels: list[str],
                  title: str = "") -> tuple[Image.Image, GridLayout]:
    """(cell, cell, 3) uint8 cells (None: left white) under their column labels, beside their row labels."""
    cell = next(c for row in cells for c in row if c is not None).shape[0]
    widest = max(map(_text_width, row_labels), default=0)
    layout = GridLayout(cell, top=LABEL_H * ((1 if title else 0) + (1 if any(col_labels) else 0)),
                        left=widest + 2 * PAD if widest else 0)
    columns = max(len(row) for row in cells)
    width = max(layout.left + columns * cell, _text_width(title) + 2 * PAD)
    sheet = Image.new("RGB", (width, layout.top + len(cells) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PAD, 1), title, fill="black")
    for c, label in enumerate(col_labels):
        x, _ = layout.origin(0, c)
        draw.text((x + PAD, layout.top - LABEL_H + 1), label, fill="black")
    for r, (row, label) in enumerate(zip(cells, row_labels, strict=True)):
        x, y = layout.origin(r, 0)
        draw.text((PAD, y + cell // 2 - LABEL_H // 2), label, fill="black")
        for c, image in enumerate(row):
            if image is not None:
                sheet.paste(Image.fromarray(image), layout.origin(r, c))
    return sheet, layout


def caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` in white on a black band along its bottom edge (same size)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    h = image.height
    draw.rectangle((0, h - LABEL_H, image.width, h), fill="black")
    draw.text((PAD, h - LABEL_H + 1), text, fill="white")
    return np.asarray(image)
