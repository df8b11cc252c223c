"""Image conversions shared by training, search and metrics."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from magnet.image_files import read_rgb


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 in [0, 255], quantised exactly as NVlabs' FID does."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def load_square(path: str | Path, size: int) -> torch.Tensor:
    """An image file as upright uint8 (3, size, size) RGB: centre-cropped to a square, Lanczos-resized if needed.

    A bad or oversized file raises one of `magnet.image_files.READ_ERRORS`.
    """
    image = read_rgb(path)
    w, h = image.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
