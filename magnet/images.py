"""Image conversions shared by training, search and metrics."""

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 in [0, 255], quantised exactly as NVlabs' FID does."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)
