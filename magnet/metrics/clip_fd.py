"""CLIP image features for a Frechet distance in CLIP space (FD_CLIP), a judge of art less tied to ImageNet.

Images arrive as uint8, like Inception's, so generated and real images are quantised the same way.
"""

import re

from torch import Tensor

from magnet.clip import load_clip
from magnet.metrics.distances import frechet_distance
from magnet.metrics.registry import FEATURE_NETWORKS, register_metric


class ClipFeatures:
    """uint8 images (N, 3, H, W) -> (N, D) L2-normalised CLIP image embeddings."""

    def __init__(self, clip):
        self.clip = clip
        # Random weights (pretrained None) differ per run, so their features get no cache name.
        tag = f"clip-{clip.model_name}-{clip.pretrained}"
        self.name = None if clip.pretrained is None else re.sub(r"\W+", "_", tag)

    def __call__(self, images: Tensor) -> Tensor:
        return self.clip.encode_images(images.float() / 127.5 - 1).detach()


@FEATURE_NETWORKS.register("clip")
def clip_features(settings, device=None) -> ClipFeatures:
    """CLIP through magnet.clip (which explains how to point at local weights when offline)."""
    return ClipFeatures(load_clip(settings.clip["model_name"], settings.clip.get("pretrained"), device=device))


@register_metric("clip_fd", features="clip")
def clip_fd(real, fake, settings) -> dict[str, float]:
    return {"value": frechet_distance(real, fake)}
