"""Evaluate a generator against an image folder: FID, optionally KID and the Frechet distance in CLIP."""

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from rich.progress import track
from torch import Tensor, nn

from magnet.images import to_uint8
from magnet.metrics.distances import frechet_distance, kernel_distance
from magnet.metrics.stats import folder_features

FeatureNetwork = Callable[[Tensor], Tensor]  # uint8 (N, 3, H, W) -> (N, D), with a `name` attribute


@torch.no_grad()
def generated_features(
    generator: nn.Module,
    networks: Sequence[FeatureNetwork],
    num_gen: int,
    batch_size: int = 32,
    truncation_psi: float = 1.0,
    noise_mode: str = "random",
    seed: int = 0,
    progress: bool = True,
) -> list[Tensor]:
    """Features (num_gen, D) of generated images for each network, from one pass over the generator.

    Images are quantised to uint8 first, as real images on disk are; latents come from `seed` alone.
    """
    if num_gen < 2:
        raise ValueError(f"num_gen={num_gen}: a distance between distributions needs at least 2 images.")
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    features: list[list[Tensor]] = [[] for _ in networks]
    batches = range(math.ceil(num_gen / batch_size))
    for i in track(batches, description="Generating", disable=not progress):
        n = min(batch_size, num_gen - i * batch_size)
        z = torch.randn(n, generator.style_dim, generator=rng).to(device)
        images = to_uint8(generator(z, truncation_psi=truncation_psi, noise_mode=noise_mode))
        for out, network in zip(features, networks, strict=True):
            out.append(network(images).float().cpu())
    return [torch.cat(out) for out in features]


def distances(
    real: Sequence[Tensor],
    fake: Sequence[Tensor],
    kid: bool = False,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    clip: bool = False,
) -> dict[str, float]:
    """The figures from Inception features (first pair) and, if `clip`, CLIP features (second pair)."""
    out = {"fid": frechet_distance(real[0], fake[0])}
    if kid:
        out["kid_mean"], out["kid_std"] = kernel_distance(real[0], fake[0], kid_subsets, kid_subset_size)
    if clip:
        out["clip_fd"] = frechet_distance(real[1], fake[1])
    return out


def evaluate(
    generator: nn.Module,
    data_dir: str | os.PathLike,
    inception: FeatureNetwork,
    num_gen: int = 10000,
    size: int | None = None,
    clip: FeatureNetwork | None = None,
    kid: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    batch_size: int = 32,
    truncation_psi: float = 1.0,
    noise_mode: str = "random",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """FID (+ KID, + CLIP FD when `clip` is given) of `num_gen` images against every image in `data_dir`.

    Real images are read at `size` px (default: the generator's size) and their features cached.
    """
    size = size or generator.size
    networks = [inception] if clip is None else [inception, clip]
    device = next(generator.parameters()).device
    real = [
        folder_features(data_dir, net, size, cache_dir, batch_size, num_workers, device, progress) for net in networks
    ]
    fake = generated_features(generator, networks, num_gen, batch_size, truncation_psi, noise_mode, seed, progress)
    figures = distances(real, fake, kid, kid_subsets, kid_subset_size, clip=clip is not None)
    setup = {
        "data_dir": str(Path(data_dir).resolve()),
        "num_real": len(real[0]),
        "num_gen": num_gen,
        "size": size,
        "truncation_psi": truncation_psi,
        "noise_mode": noise_mode,
        "seed": seed,
        "feature_networks": [getattr(net, "name", None) for net in networks],
    }
    return {**figures, **setup}


def write_json(figures: dict, path: str | os.PathLike) -> Path:
    """Write the figures as indented JSON, creating the folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path
