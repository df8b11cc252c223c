"""Open any image file as upright 8-bit RGB. PIL and numpy only: the crop workers run without torch.

- EXIF orientation is applied, so a photo stored on its side comes out upright.
- Wider-than-8-bit greyscale is scaled by the bit depth the file declares, never by its pixel values (a dark
  16-bit painting stays dark): I;16* and Pillow's 32-bit `I` hold 16-bit data (16-bit PNG, PGM) unless a
  TIFF says otherwise (BitsPerSample, signed per SampleFormat); `F` (32-bit float) is taken as 0..1.
  16-bit RGB(A) is narrowed by Pillow itself (high byte), within one level of the exact scaling.
- Transparency (RGBA, LA, PA, a palette or colour with a transparent entry) is laid over white.
- A file with more than MAX_PIXELS pixels is refused from its header, before its pixels are decoded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS, about 13,400 px square or 0.5 GB as 8-bit RGB); Pillow
# only warns from half of it. Ours holds even where another library disabled Pillow's check.
MAX_PIXELS = 2 * 89_478_485
# What reading an image can raise for a bad file (not a bug): truncated, not an image, or too large.
READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# What training and FID read from a folder (the crop stage also takes the formats paintings come in).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Bumped when read_rgb returns other pixels for the same file, so caches of them are recomputed.
READER_VERSION = 2

_ORIENTATION, _BITS_PER_SAMPLE, _SAMPLE_FORMAT = 0x0112, 258, 339  # EXIF / TIFF tags
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")


def list_images(folder: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under `folder` (recursive, hidden files skipped), sorted for a stable order and hash."""
    return sorted(
        path for path in Path(folder).rglob("*")
        if path.suffix.lower() in extensions and path.is_file() and not path.name.startswith(".")
    )


def open_image(path: str | os.PathLike) -> Image.Image:
    """The image at `path`, opened lazily (header only); raises DecompressionBombError above MAX_PIXELS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides, below
        image = Image.open(path)  # raises DecompressionBombError above Pillow's hard limit
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise Image.DecompressionBombError(
            f"{width}x{height} = {width * height} pixels exceeds the limit of {MAX_PIXELS} "
            "(magnet.image_files.MAX_PIXELS)")
    return image


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) once EXIF orientation is applied: swapped for an image stored on its side."""
    width, height = image.size
    return (height, width) if image.getexif().get(_ORIENTATION) in (5, 6, 7, 8) else (width, height)


def to_rgb8(image: Image.Image) -> Image.Image:
    """Decode an opened image as upright 8-bit RGB (see the module docstring for the conversions)."""
    image.load()  # decodes: a truncated file fails here
    full_scale = _full_scale(image) if image.mode in _WIDE_MODES else None  # before transposing drops tags
    if image.getexif().get(_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if full_scale is not None:
        values = np.asarray(image).astype(np.float32) * np.float32(255 / full_scale)
        image = Image.fromarray(np.rint(values.clip(0, 255)).astype(np.uint8))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def read_rgb(path: str | os.PathLike) -> Image.Image:
    """The image file at `path` as upright 8-bit RGB; raises one of READ_ERRORS for a bad or oversized file."""
    with open_image(path) as image:
        return to_rgb8(image)


def _full_scale(image: Image.Image) -> float:
    """The value that maps to 255 in a wide greyscale image: from its TIFF tags, else 16-bit (1.0 for F)."""
    if image.mode == "F":
        return 1.0
    tags = getattr(image, "tag_v2", {})
    bits = tags.get(_BITS_PER_SAMPLE, (16,))[0]
    signed = tags.get(_SAMPLE_FORMAT, (1,))[0] == 2
    return 2 ** (bits - signed) - 1
