"""Metrics by name (fid50k_full, kid10k, clip_fd, ...), offline, checked against torch-fidelity.

Importing the package registers every metric and feature network in its own file.
"""

from magnet.metrics import clip_fd, fid, inception, kid  # noqa: F401  (they register themselves)
from magnet.metrics.distances import frechet_distance, kernel_distance
from magnet.metrics.evaluate import MetricSuite, evaluate, generated_features, write_json
from magnet.metrics.inception import InceptionFeatures, inception_weights_path
from magnet.metrics.registry import FEATURE_NETWORKS, METRICS, register_metric
from magnet.metrics.settings import MetricSettings
from magnet.metrics.stats import folder_features

__all__ = [
    "FEATURE_NETWORKS",
    "METRICS",
    "InceptionFeatures",
    "MetricSettings",
    "MetricSuite",
    "evaluate",
    "folder_features",
    "frechet_distance",
    "generated_features",
    "inception_weights_path",
    "kernel_distance",
    "register_metric",
    "write_json",
]
