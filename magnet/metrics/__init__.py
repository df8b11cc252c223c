"""FID, KID and the Frechet distance in CLIP space, offline, checked against torch-fidelity."""

from magnet.metrics.distances import frechet_distance, kernel_distance
from magnet.metrics.fid import evaluate, generated_features, write_json
from magnet.metrics.inception import InceptionFeatures, inception_weights_path
from magnet.metrics.stats import folder_features

__all__ = [
    "InceptionFeatures",
    "evaluate",
    "folder_features",
    "frechet_distance",
    "generated_features",
    "inception_weights_path",
    "kernel_distance",
    "write_json",
]
