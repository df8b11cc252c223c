"""The Haar wavelet transform of SWAGAN, as strided slicing (exact, no convolution).

Sub-bands come concatenated along channels in the order (LL, LH, HL, HH), each with the input's channel
count. With a, b, c, d the pixels (0,0), (0,1), (1,0), (1,1) of every 2x2 block:
LL = (a+b+c+d)/2, LH = (a+b-c-d)/2, HL = (a-b+c-d)/2, HH = (a-b-c+d)/2. These are exactly rosinality's
HaarTransform bands and PyWavelets' `pywt.dwt2(x, 'haar')` = (cA, (cH, cV, cD)) in that order and sign.
The transform is orthonormal, so the inverse uses the same four combinations.
"""

import torch


def _butterfly(a, b, c, d):
    return (a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4C, H/2, W/2): the one-level Haar transform, bands (LL, LH, HL, HH)."""
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"Haar transform needs even height and width, got {tuple(x.shape[-2:])}")
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat(_butterfly(a, b, c, d), dim=1)


def haar_iwt(x: torch.Tensor) -> torch.Tensor:
    """(N, 4C, H, W) -> (N, C, 2H, 2W): the inverse of `haar_dwt`."""
    if x.shape[1] % 4:
        raise ValueError(f"inverse Haar transform needs 4*C channels, got {x.shape[1]}")
    n, c4, h, w = x.shape
    a, b, c, d = _butterfly(*x.chunk(4, dim=1))
    # Interleave: a -> (0,0), b -> (0,1), c -> (1,0), d -> (1,1) of every 2x2 block.
    top = torch.stack((a, b), dim=-1)
    bottom = torch.stack((c, d), dim=-1)
    return torch.stack((top, bottom), dim=-3).reshape(n, c4 // 4, 2 * h, 2 * w)
