"""Latents from seeds or paintings, W+ rendered in batches, and generator images as uint8 frames."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from magnet.checks import check_bool, check_file, check_int
from magnet.errors import ConfigError
from magnet.explore.paintings import read_painting
from magnet.images import to_uint8
from magnet.search.postprocess import auto_levels
from magnet.search.space import LatentSpace

SEED_MAX = 2**32 - 1  # as NVlabs' seeds (numpy's RandomState)


def check_seed(key: str, seed) -> None:
    check_int(key, seed, at_least=0, at_most=SEED_MAX)


def check_sources(key: str, sources, at_least: int = 1) -> None:
    """A list of seeds (integers) and painting.png paths (texts)."""
    if not isinstance(sources, list | tuple) or len(sources) < at_least:
        raise ConfigError(key, sources, f"a list of at least {at_least} seeds or painting.png paths")
    for i, source in enumerate(sources):
        check_source(f"{key}[{i}]", source)


def check_source(key: str, source) -> None:
    """A seed or the path of a painting.png."""
    if isinstance(source, str):
        check_file(key, source, what="painting.png")
    else:
        check_seed(key, source)


def painting_paths(sources: Sequence) -> list[Path]:
    return [Path(s) for s in sources if isinstance(s, str)]


def check_size(key: str, size) -> None:
    """Output px: null (the generator's size) or an even number >= 16 (MP4's colour planes need even sides)."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 16 or size % 2):
        raise ConfigError(key, size, "null or an even integer >= 16 (px)")


def check_frame_settings(size, levels: bool, batch_size: int) -> None:
    check_size("size", size)
    check_bool("levels", levels)
    check_int("batch_size", batch_size, at_least=1)


def seed_z(generator, seed: int) -> torch.Tensor:
    """The z (style_dim,) of a seed, as the search samples it: a Gaussian on the sqrt(dim) sphere."""
    return LatentSpace(generator, "z").sample(1, torch.Generator().manual_seed(int(seed)))[0]


@torch.no_grad()
def source_ws(generator, source, truncation_psi: float = 1.0) -> tuple[torch.Tensor, float, str]:
    """A seed or a painting.png path -> (its W+ (n_latent, style_dim), the psi it was mapped with, a label)."""
    if isinstance(source, str):
        painting = read_painting(source)
        return painting.ws(generator), painting.truncation_psi, painting.label
    ws = LatentSpace(generator, "z", truncation_psi).to_ws(seed_z(generator, source)[None])[0]
    return ws, float(truncation_psi), f"seed {source}"


@torch.no_grad()
def synthesize(generator, ws: torch.Tensor, batch_size: int = 8, progress=None) -> Iterator[torch.Tensor]:
    """Each W+ of (N, n_latent, style_dim) as its (3, size, size) image on the CPU, with the stored noise."""
    device = next(generator.parameters()).device
    for start in range(0, len(ws), batch_size):
        images = generator.synthesis(ws[start : start + batch_size].to(device), noise_mode="const").float().cpu()
        yield from images
        if progress is not None:
            progress(min(start + batch_size, len(ws)), len(ws))


def to_frame(image: torch.Tensor, size: int | None = None, levels: bool = False) -> np.ndarray:
    """A (3, H, W) image in [-1, 1] -> (size, size, 3) uint8: auto-levelled as painting.png, or quantised as
    NVlabs quantises; Lanczos-resized when `size` differs."""
    frame = auto_levels(image) if levels else to_uint8(image).permute(1, 2, 0).numpy()
    if size is not None and size != frame.shape[0]:
        frame = np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.LANCZOS))
    return frame
