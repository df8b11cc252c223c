"""Cut each painting into square crops (three along its long side, one if square), resized with LANCZOS.

Landscape paintings give `<stem>_lft/_ctr/_rgt`, portrait ones `<stem>_top/_ctr/_bot`, square ones `<stem>_ctr`,
in the painting's own sub-folder and with its suffix (`a/x.jpg` -> `a/x_ctr.jpg`; one we do not write stays in
the name: `x.tif` -> `x_ctr.tif.png`), so each painting has crops of its own, named alike on every run.
Paintings are read upright in 8-bit RGB (`magnet.image_files`); unreadable, truncated, too large or too small
ones are skipped with the reason logged. Runs over processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.progress import track

from magnet.atomic import atomic_path
from magnet.checks import check_bool, check_int
from magnet.errors import MissingFileError
from magnet.image_files import READ_ERRORS, list_images, open_image, to_rgb8, upright_size

log = logging.getLogger(__name__)

SOURCE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
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


def crop_name(source_name: str, position: str) -> str:
    """File name of one crop: `x.jpg` -> `x_ctr.jpg`, `x.JPG` -> `x_ctr.JPG`, `x.tif` -> `x_ctr.tif.png`.

    Unique within a folder: a suffix we write (jpg, jpeg, png, webp, in any case) is kept as it is; any other
    stays after the position, where no kept name has one.
    """
    stem, suffix = os.path.splitext(source_name)
    kept = suffix if suffix.lower() in _SAVE_FORMAT else f"{suffix}.png"
    return f"{stem}_{position}{kept}"


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
    try:
        with open_image(source) as opened:
            width, height = upright_size(opened)
            boxes = square_boxes(width, height)
            targets = [out_dir / crop_name(source.name, position) for position, _ in boxes]
            if not overwrite and all(t.exists() for t in targets):
                return CropResult(source, existing=tuple(targets))
            if min(width, height) < min_side:
                return CropResult(source, skipped=f"too small ({width}x{height}, min_side {min_side})")
            image = to_rgb8(opened)
    except Image.DecompressionBombError as e:
        return CropResult(source, skipped=f"too large ({e})")
    except READ_ERRORS as e:
        return CropResult(source, skipped=f"unreadable ({e})")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_format = _SAVE_FORMAT[targets[0].suffix.lower()]
    options = {"quality": jpeg_quality} if save_format in ("JPEG", "WEBP") else {}
    for (_, box), target in zip(boxes, targets):
        crop = image.crop(box).resize((size, size), Image.Resampling.LANCZOS)
        with atomic_path(target) as tmp:
            crop.save(tmp, format=save_format, **options)
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


def check_crop_settings(size: int, min_side: int, jpeg_quality: int = 95, workers: int | None = None,
                        overwrite: bool = False) -> None:
    """Refuse bad crop settings (`prepare` checks them before any stage runs)."""
    check_int("size", size, at_least=1)
    check_int("min_side", min_side, at_least=0)
    check_int("jpeg_quality", jpeg_quality, at_least=1, at_most=100)
    check_int("workers", workers, at_least=1, optional=True)
    check_bool("overwrite", overwrite)


def crop_folder(src_dir: str | Path, out_dir: str | Path, size: int, min_side: int, jpeg_quality: int = 95,
                workers: int | None = None, overwrite: bool = False) -> CropSummary:
    """Crop every painting under `src_dir` into the same sub-folder of `out_dir`, over `workers` processes.

    `workers` None: one per core.
    """
    check_crop_settings(size, min_side, jpeg_quality, workers, overwrite)
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    sources = list_images(src_dir, SOURCE_EXTENSIONS)
    if not sources:
        raise MissingFileError(f"no paintings ({', '.join(SOURCE_EXTENSIONS)}) under {src_dir}: run the scrape "
                                f"stage first or set crop.src_dir to a folder of paintings")
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or len(os.sched_getaffinity(0))
    args = [(s, out_dir / s.parent.relative_to(src_dir), size, min_side, jpeg_quality, overwrite) for s in sources]
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
