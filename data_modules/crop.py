"""Cut each painting into square crops (three along its long side, one if square), resized with LANCZOS.

Landscape paintings give `<stem>_lft/_ctr/_rgt`, portrait ones `<stem>_top/_ctr/_bot`, square ones `<stem>_ctr`.
Unreadable, truncated or too small paintings are skipped with the reason logged. Runs over processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps
from rich.progress import track

from data_modules.files import list_images

log = logging.getLogger(__name__)

SOURCE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
_ORIENTATION = 0x0112  # EXIF tag
_SAVE_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}  # other sources -> PNG


def square_boxes(width: int, height: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(position, box) of the square crops of a width x height image: start, centre, end of the long side."""
    side = min(width, height)
    if width == height:
        return [("ctr", (0, 0, side, side))]
    names = ("lft", "ctr", "rgt") if width > height else ("top", "ctr", "bot")
    offsets = (0, (max(width, height) - side) // 2, max(width, height) - side)
    if width > height:
        return [(name, (o, 0, o + side, side)) for name, o in zip(names, offsets)]
    return [(name, (0, o, side, o + side)) for name, o in zip(names, offsets)]


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode; transparency (RGBA, LA, palette with alpha) is laid over white, not black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


@dataclass(frozen=True)
class CropResult:
    """Outcome of one painting: files written (or already there), or why it was skipped."""

    source: Path
    written: tuple[Path, ...] = ()
    existing: tuple[Path, ...] = ()
    skipped: str = ""


def crop_painting(source: Path, out_dir: Path, size: int, min_side: int, jpeg_quality: int,
                  overwrite: bool) -> CropResult:
    """Write the square crops of one painting into `out_dir` (each via a temporary file, then renamed)."""
    ext = source.suffix.lower() if source.suffix.lower() in _SAVE_FORMAT else ".png"
    try:
        with Image.open(source) as opened:
            width, height = opened.size
            if opened.getexif().get(_ORIENTATION) in (5, 6, 7, 8):  # stored on its side: EXIF turns it
                width, height = height, width
            boxes = square_boxes(width, height)
            targets = [out_dir / f"{source.stem}_{name}{ext}" for name, _ in boxes]
            if not overwrite and all(t.exists() for t in targets):
                return CropResult(source, existing=tuple(targets))
            if min(width, height) < min_side:
                return CropResult(source, skipped=f"too small ({width}x{height}, min_side {min_side})")
            image = to_rgb(ImageOps.exif_transpose(opened))  # decodes: a truncated file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return CropResult(source, skipped=f"unreadable ({e})")
    for (_, box), target in zip(boxes, targets):
        crop = image.crop(box).resize((size, size), Image.Resampling.LANCZOS)
        tmp = target.with_name(f".{target.name}.tmp")
        options = {"quality": jpeg_quality} if _SAVE_FORMAT[ext] in ("JPEG", "WEBP") else {}
        crop.save(tmp, format=_SAVE_FORMAT[ext], **options)
        os.replace(tmp, target)
    return CropResult(source, written=tuple(targets))


@dataclass
class CropSummary:
    """Counts of a crop run; `skipped` lists (painting, reason)."""

    paintings: int = 0
    crops_written: int = 0
    crops_existing: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.paintings} paintings: {self.crops_written} crops written, {self.crops_existing} already "
                f"there, {len(self.skipped)} paintings skipped")


def crop_folder(src_dir: str | Path, out_dir: str | Path, size: int, min_side: int, jpeg_quality: int = 95,
                workers: int | None = None, overwrite: bool = False) -> CropSummary:
    """Crop every painting under `src_dir` into `out_dir` over `workers` processes (None: one per core)."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    sources = list_images(src_dir, SOURCE_EXTENSIONS)
    if not sources:
        raise FileNotFoundError(f"no paintings ({', '.join(SOURCE_EXTENSIONS)}) under {src_dir}: run the scrape "
                                f"stage first or set crop.src_dir to a folder of paintings")
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or len(os.sched_getaffinity(0))
    args = [(s, out_dir, size, min_side, jpeg_quality, overwrite) for s in sources]
    summary = CropSummary(paintings=len(sources))
    if workers == 1:
        results = (crop_painting(*a) for a in args)
        _collect(summary, track(results, total=len(args), description="cropping"))
        return summary
    # spawn: a forked child of a process that already ran torch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = pool.map(_crop_args, args, chunksize=max(1, min(32, len(args) // (4 * workers))))
        _collect(summary, track(results, total=len(args), description="cropping"))
    return summary


def _crop_args(args: tuple) -> CropResult:
    return crop_painting(*args)


def _collect(summary: CropSummary, results) -> None:
    for result in results:
        summary.crops_written += len(result.written)
        summary.crops_existing += len(result.existing)
        if result.skipped:
            log.warning("skipped %s: %s", result.source, result.skipped)
            summary.skipped.append((result.source, result.skipped))
