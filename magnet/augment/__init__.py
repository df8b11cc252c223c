"""Adaptive discriminator augmentation (ADA): the kornia pipeline and the controller of its probability p."""

from magnet.augment.ada import AdaController
from magnet.augment.pipeline import BGC, PRESETS, AugmentPipe

__all__ = ["BGC", "PRESETS", "AdaController", "AugmentPipe"]
