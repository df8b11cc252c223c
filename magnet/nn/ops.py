"""Low-level ops of the StyleGAN family in plain PyTorch: FIR resampling and fused bias + leaky ReLU.

Everything here is built from differentiable torch ops (pad, depthwise conv, transposed conv), so
gradients of gradients work (R1 and path-length regularisation need them) and nothing is compiled.
"""

import math

import torch
import torch.nn.functional as F


def make_fir(taps) -> torch.Tensor:
    """A FIR filter normalised to unit gain: 1-D taps stay 1-D (separable), 2-D stay 2-D."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim not in (1, 2):
        raise ValueError(f"FIR taps must be 1-D or 2-D, got shape {tuple(k.shape)}")
    return k / k.sum()


def _parse_pad(pad) -> tuple[int, int, int, int]:
    """Padding as (x0, x1, y0, y1); an int or a pair applies to both axes (rosinality's convention)."""
    if isinstance(pad, int):
        return pad, pad, pad, pad
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad
    raise ValueError(f"pad must be an int, (p0, p1) or (x0, x1, y0, y1); got {pad}")


def _upfirdn(x: torch.Tensor, kernel: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
             pad: tuple[int, int, int, int]) -> torch.Tensor:
    """upfirdn with a 2-D kernel and per-axis (y, x) factors, as one depthwise (transposed) convolution."""
    px0, px1, py0, py1 = pad
    channels, (kh, kw) = x.shape[1], kernel.shape
    weight = kernel.to(x.dtype).expand(channels, 1, kh, kw)
    if up == (1, 1):
        x = F.pad(x, [px0, px1, py0, py1])
        return F.conv2d(x, weight.flip(2, 3), stride=down, groups=channels)
    h, w = x.shape[2:]
    # Zero insertion + full convolution in one step (no zero-stuffed copy): the transposed conv scatters
    # x[i] * kernel at i * up. The padded result starts at k - 1 - p0 in that full convolution.
    full = F.conv_transpose2d(x, weight, stride=up, groups=channels)
    y0, x0 = kh - 1 - py0, kw - 1 - px0
    out_h, out_w = h * up[0] + py0 + py1 - kh + 1, w * up[1] + px0 + px1 - kw + 1
    x = F.pad(full, [-x0, x0 + out_w - full.shape[3], -y0, y0 + out_h - full.shape[2]])
    return x[:, :, :: down[0], :: down[1]] if down != (1, 1) else x


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), convolve with `kernel`, keep every down-th sample.

    Same semantics as rosinality's / NVlabs' upfirdn2d: a true convolution (kernel flipped), padding as
    (x0, x1, y0, y1). A 1-D kernel is applied separably (y, then x), a 2-D kernel in one pass; on CPU
    the single 2-D depthwise pass is the faster of the two for StyleGAN's 4x4 blur.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects NCHW input, got shape {tuple(x.shape)}")
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got up={up}, down={down}")
    px0, px1, py0, py1 = _parse_pad(pad)
    kernel = kernel.to(x.device)
    if kernel.ndim == 1:
        x = _upfirdn(x, kernel[:, None], (up, 1), (down, 1), (0, 0, py0, py1))
        return _upfirdn(x, kernel[None, :], (1, up), (1, down), (px0, px1, 0, 0))
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 1-D or 2-D, got shape {tuple(kernel.shape)}")
    return _upfirdn(x, kernel, (up, up), (down, down), (px0, px1, py0, py1))


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2,
                    gain: float = math.sqrt(2), inplace: bool = False, clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply leaky ReLU, scale by `gain` (StyleGAN2's 'lrelu') and, with
    `clamp`, clip to [-clamp, clamp] after the gain (NVlabs' bias_act).

    `inplace` overwrites `x` (for inference, where it saves two full-size allocations per layer).
    """
    if bias is not None:
        bias = bias.view(1, -1, *([1] * (x.ndim - 2))).to(x.dtype)
        x = x.add_(bias) if inplace else x + bias
    if inplace:
        x = F.leaky_relu_(x, negative_slope).mul_(gain)
        return x.clamp_(-clamp, clamp) if clamp is not None else x
    x = F.leaky_relu(x, negative_slope) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x
