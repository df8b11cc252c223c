"""Auto-levels: MAGnet's final contrast stretch of a generated image."""

from __future__ import annotations

import numpy as np
import torch


def auto_levels(image, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """Stretch each channel so its `low` and `high` percentiles map to 0 and 255; clip, round to uint8.

    image: (3, H, W) generator output in [-1, 1] (tensor or array) -> (H, W, 3) uint8. A flat channel,
    which has nothing to stretch, gets the plain [-1, 1] -> [0, 255] mapping instead.
    """
    x = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"auto_levels expects one (3, H, W) image, got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.float64)
    for c, channel in enumerate(x.astype(np.float64)):
        lo, hi = np.percentile(channel, [low, high])
        out[c] = (channel - lo) / (hi - lo) * 255 if hi > lo else (channel + 1) * 127.5
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8).transpose(1, 2, 0)
