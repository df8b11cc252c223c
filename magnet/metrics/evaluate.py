"""Measure a generator against an image folder with the metrics of a MetricSettings, by name."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from rich.progress import track
from torch import Tensor, nn

from magnet.images import to_uint8
from magnet.metrics.registry import FEATURE_NETWORKS, METRICS, parse_metric
from magnet.metrics.settings import MetricSettings
from magnet.metrics.stats import folder_features
from magnet.precision import autocast, resolve

FeatureNetwork = Callable[[Tensor], Tensor]  # uint8 (N, 3, H, W) -> (N, D), with a `name` attribute


@torch.no_grad()
def generated_features(
    generator: nn.Module,
    networks: Mapping[str, FeatureNetwork],
    num_gen: int,
    batch_size: int = 32,
    truncation_psi: float = 1.0,
    noise_mode: str = "random",
    seed: int = 0,
    progress: bool = True,
    precision: str = "fp32",
) -> dict[str, Tensor]:
    """Features (num_gen, D) of generated images for each network, from one pass over the generator.

    Images are quantised to uint8 first, as real images on disk are; latents come from `seed` alone. The
    synthesis runs in `precision` (fp32 | bf16 | auto), the mapping and the feature networks in float32.
    """
    if num_gen < 2:
        raise ValueError(f"num_gen={num_gen}: a distance between distributions needs at least 2 images.")
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    features: dict[str, list[Tensor]] = {name: [] for name in networks}
    for i in track(range(math.ceil(num_gen / batch_size)), description="Generating", disable=not progress):
        n = min(batch_size, num_gen - i * batch_size)
        z = torch.randn(n, generator.style_dim, generator=rng).to(device)
        ws = generator.mapping(z, truncation_psi=truncation_psi)
        with autocast(precision, device):
            images = generator.synthesis(ws, noise_mode=noise_mode)
        images = to_uint8(images.float())
        for name, network in networks.items():
            features[name].append(network(images).float().cpu())
    return {name: torch.cat(out) for name, out in features.items()}


class MetricSuite:
    """The metrics of one MetricSettings: the feature networks they need, the images, the figures.

    `networks` may hand in ready feature networks by registry name (the rest are built on first use).
    """

    def __init__(self, settings: MetricSettings, networks: Mapping[str, FeatureNetwork] | None = None):
        self.settings = settings
        self.specs = [parse_metric(name, settings.num_gen) for name in settings.names]
        self.feature_names = list(dict.fromkeys(METRICS.get(spec.kind).features for spec in self.specs))
        self._networks = dict(networks or {})

    @property
    def num_gen(self) -> int:
        """Generated images needed: the largest count of any metric (the others use the first of them)."""
        return max(spec.num_gen for spec in self.specs)

    def networks(self, device=None) -> dict[str, FeatureNetwork]:
        for name in self.feature_names:
            if name not in self._networks:
                self._networks[name] = FEATURE_NETWORKS.get(name)(self.settings, device)
            elif isinstance(self._networks[name], nn.Module):
                self._networks[name].to(device)
        return {name: self._networks[name] for name in self.feature_names}

    def real_features(self, folder, size: int, device=None, progress: bool = True) -> dict[str, Tensor]:
        s = self.settings
        return {
            name: folder_features(folder, net, size, s.cache_dir, s.batch_size, s.num_workers, device, progress)
            for name, net in self.networks(device).items()
        }

    def fake_features(self, generator, num_gen: int, seed: int, progress: bool = True) -> dict[str, Tensor]:
        s = self.settings
        networks = self.networks(next(generator.parameters()).device)
        return generated_features(generator, networks, num_gen, s.batch_size, s.truncation_psi, s.noise_mode,
                                  seed, progress, s.precision)

    def figures(self, real: Mapping[str, Tensor], fake: Mapping[str, Tensor]) -> dict[str, float]:
        """Each metric's figures: `name` for its value, `name_<key>` for any other (kid10k_full_std)."""
        out = {}
        for spec in self.specs:
            kind = METRICS.get(spec.kind)
            real_set, fake_set = real[kind.features], fake[kind.features][: spec.num_gen]
            if not spec.full and len(real_set) > spec.num_gen:  # a seeded subset, as NVlabs' max_size
                keep = torch.randperm(len(real_set), generator=torch.Generator().manual_seed(self.settings.seed))
                real_set = real_set[keep[: spec.num_gen]]
            for key, value in kind.compute(real_set, fake_set, self.settings).items():
                out[spec.name if key == "value" else f"{spec.name}_{key}"] = value
        return out


def evaluate(
    generator: nn.Module,
    data_dir: str | os.PathLike,
    settings: MetricSettings,
    networks: Mapping[str, FeatureNetwork] | None = None,
    progress: bool = True,
) -> dict:
    """The figures of `settings.names` for `generator` against every image in `data_dir`, and the setup.

    Real images are read at `settings.size` px (default: the generator's size) and their features cached.
    """
    suite = MetricSuite(settings, networks)
    size = settings.size or generator.size
    device = next(generator.parameters()).device
    real = suite.real_features(data_dir, size, device, progress)
    fake = suite.fake_features(generator, suite.num_gen, settings.seed, progress)
    setup = {
        "data_dir": str(Path(data_dir).resolve()),
        "num_real": len(next(iter(real.values()))),
        "num_gen": suite.num_gen,
        "size": size,
        "truncation_psi": settings.truncation_psi,
        "noise_mode": settings.noise_mode,
        "precision": resolve(settings.precision, device),
        "seed": settings.seed,
        "feature_networks": {name: getattr(net, "name", None) for name, net in suite.networks(device).items()},
    }
    return {**suite.figures(real, fake), **setup}


def write_json(figures: dict, path: str | os.PathLike) -> Path:
    """Write the figures as indented JSON, creating the folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path
