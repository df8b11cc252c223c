"""Frames to a video file: MP4 (H.264) through the ffmpeg that imageio-ffmpeg's wheel carries, else a GIF."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console

from magnet.checks import check_choice, check_float

FORMATS = ("mp4", "gif")


def check_video_settings(fps, fmt: str) -> None:
    check_float("fps", fps, above=0, at_most=120)
    check_choice("format", fmt, FORMATS)


def find_ffmpeg() -> str | None:
    """The ffmpeg executable imageio-ffmpeg would run (its own, $IMAGEIO_FFMPEG_EXE or the system's), or None."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return exe if (os.path.isfile(exe) and os.access(exe, os.X_OK)) or shutil.which(exe) else None


def write_video(path, frames: Iterable[np.ndarray], fps: float, fmt: str = "mp4") -> Path:
    """Write (H, W, 3) uint8 frames at `fps` to `path` with the suffix of `fmt`; returns the path written.

    Without ffmpeg an MP4 becomes a GIF (one line on stderr says so): the caller gets the GIF's path.
    """
    path = Path(path).with_suffix(f".{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp4":
        if find_ffmpeg() is not None:
            return _write_mp4(path, frames, fps)
        path = path.with_suffix(".gif")
        Console(stderr=True).print(
            f"ffmpeg not found (imageio-ffmpeg has no binary here, or IMAGEIO_FFMPEG_EXE names a missing file): "
            f"writing {path} instead; pip install imageio-ffmpeg, or install ffmpeg, for MP4",
            markup=False, highlight=False, soft_wrap=True)
    return _write_gif(path, frames, fps)


def _write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    import imageio_ffmpeg

    writer = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", quality=8,
                                                     macro_block_size=2, ffmpeg_log_level="error")
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
    finally:
        if writer is not None:
            writer.close()
    return path


def _write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    images = [Image.fromarray(frame) for frame in frames]
    # GIF delays are in 10 ms steps: round to the nearest one that players honour (>= 20 ms)
    duration = max(20, round(100 / fps) * 10)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path
