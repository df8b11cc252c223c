"""Image files that readers get wrong, built from real paintings with numpy, zlib and PIL, with what they show.

The expectations are numpy's (rotations, flips, 8-bit tones), never the reader under test.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

# EXIF orientation -> the stored pixels turned upright, as the EXIF standard describes each value
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # mirrored, then turned 270 degrees clockwise
    6: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # mirrored, then turned 90 degrees clockwise
    8: lambda a: np.rot90(a, 1),  # turned 270 degrees clockwise
}


def write_png(path: Path, width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes]) -> Path:
    """A PNG from raw rows (big-endian samples), compressed as they come: no image is ever held in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\0" + row) for row in rows) + compressor.flush()  # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def blank_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG: 30000 x 30000 is about 110 kB on disk (and 0.9 GB once decoded by PIL)."""
    row = bytes((width + 7) // 8)
    return write_png(path, width, height, 1, 0, (row for _ in range(height)))


def png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit greyscale (H, W) or RGB (H, W, 3) PNG of uint16 `values`."""
    colour_type = 2 if values.ndim == 3 else 0
    rows = (row.astype(">u2").tobytes() for row in values)
    return write_png(path, values.shape[1], values.shape[0], 16, colour_type, rows)


def painting_pixels(painting: Path, size: tuple[int, int], mode: str = "RGB") -> np.ndarray:
    """A painting resized to `size` (width, height) as uint8 pixels in `mode` (RGB or L)."""
    with Image.open(painting) as image:
        return np.asarray(image.convert(mode).resize(size, Image.Resampling.LANCZOS))


def grey16_png(painting: Path, path: Path, size: tuple[int, int]) -> np.ndarray:
    """Write a painting's grey as a 16-bit PNG (each level v as 257 v plus noise below half a level).

    Returns the 8-bit grey it shows (PIL opens it as mode I;16).
    """
    grey = painting_pixels(painting, size, "L")
    noise = np.random.default_rng(0).integers(0, 129, grey.shape)
    png16(path, (grey.astype(np.uint32) * 257 + noise).astype(np.uint16))
    return grey


def rotated_jpeg(painting: Path, path: Path, size: tuple[int, int], orientation: int) -> np.ndarray:
    """Write a painting as a JPEG stored `size` (width, height) with an EXIF orientation; returns it upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(painting_pixels(painting, size)).save(path, quality=95, exif=exif)
    with Image.open(path) as stored:  # the decoded pixels as stored, before any turn
        return UPRIGHT[orientation](np.asarray(stored.convert("RGB"))).copy()
