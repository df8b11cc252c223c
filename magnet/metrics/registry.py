"""Metrics and feature networks by name, NVlabs style: `fid50k_full` is FID of 50,000 generated images
against the whole real set; `fid10k` against at most 10,000 real ones; `kid` takes `num_gen` images.

A metric is one file that registers a kind with `@register_metric(kind, features=...)`: a function of the
real and generated features returning its figures. A feature network is registered in FEATURE_NETWORKS as a
builder `(settings, device) -> network` (uint8 images -> (N, D) features, with a `name` for the cache).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from magnet.errors import ConfigError
from magnet.registry import Registry


@dataclass(frozen=True)
class MetricKind:
    features: str                                   # FEATURE_NETWORKS name it measures in
    compute: Callable[[Tensor, Tensor, object], dict[str, float]]  # (real, fake, settings) -> {"value": ...}


@dataclass(frozen=True)
class MetricSpec:
    name: str       # as asked: fid50k_full
    kind: str       # fid
    num_gen: int    # generated images
    full: bool      # against every real image (else at most num_gen of them)


METRICS: Registry[MetricKind] = Registry("metric")
FEATURE_NETWORKS: Registry[Callable] = Registry("feature network")
_NAME = re.compile(r"^(?P<kind>[a-z][a-z_]*?)(?:(?P<count>\d+)(?P<k>k)?)?(?P<full>_full)?$")


def register_metric(kind: str, features: str):
    """Decorator: `compute(real, fake, settings) -> {"value": figure, ...}` becomes the metric `kind`."""

    def add(compute):
        METRICS.register(kind)(MetricKind(features, compute))
        return compute

    return add


def parse_metric(name: str, default_num_gen: int) -> MetricSpec:
    """`fid50k_full` -> fid of 50,000 images against the full real set; errors name the known kinds."""
    match = _NAME.match(str(name))
    if match is None or match["kind"] not in METRICS:
        raise ConfigError("names", name, f"metric names: a kind ({', '.join(METRICS.names())}), then optionally a "
                                         "count and _full, e.g. fid50k_full, kid10k, clip_fd")
    num_gen = default_num_gen if match["count"] is None else int(match["count"]) * (1000 if match["k"] else 1)
    if num_gen < 2:
        raise ConfigError("names", name, f"metrics of at least 2 images (this one asks for {num_gen}): a distance "
                                         "needs two")
    return MetricSpec(str(name), match["kind"], num_gen, match["full"] is not None)
