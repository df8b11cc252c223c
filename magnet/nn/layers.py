"""StyleGAN2 building blocks with equalised learning rate.

Module and parameter names follow rosinality's stylegan2-pytorch (`EqualLinear`, `ModulatedConv2d`,
`StyledConv`, ...), so its checkpoints - MAGnet's published model among them - load by name. Fixed FIR
filters are non-persistent buffers: they are constants, not weights, and stay out of our checkpoints.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ops import bias_leaky_relu, make_fir, upfirdn2d

BLUR_TAPS = (1, 3, 3, 1)


class PixelNorm(nn.Module):
    """Normalise each vector to unit root-mean-square (the first layer of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, then leaky ReLU(0.2) scaled by sqrt(2); `clamp` clips the result to +-clamp."""

    def __init__(self, channels: int, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias, inplace=inplace, clamp=self.clamp)


class Blur(nn.Module):
    """The 2-D blur FIR with padding, optional resampling and gain (4 after a 2x upsampling)."""

    def __init__(self, pad: tuple[int, int], up: int = 1, down: int = 1, gain: float = 1.0,
                 taps=BLUR_TAPS):
        super().__init__()
        kernel = make_fir(taps)
        kernel = torch.outer(kernel, kernel) * gain
        self.register_buffer("kernel", kernel, persistent=False)
        self.pad, self.up, self.down = pad, up, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.up, down=self.down, pad=self.pad)


def upsample_blur(taps=BLUR_TAPS, factor: int = 2) -> Blur:
    """2x upsampling with the blur filter (rosinality's `Upsample`)."""
    p = len(taps) - factor
    return Blur(((p + 1) // 2 + factor - 1, p // 2), up=factor, gain=factor**2, taps=taps)


def downsample_blur(taps=BLUR_TAPS, factor: int = 2) -> Blur:
    """Blur then keep every second sample (rosinality's `Downsample`)."""
    p = len(taps) - factor
    return Blur(((p + 1) // 2, p // 2), down=factor, taps=taps)


class EqualLinear(nn.Module):
    """Linear layer with weights scaled at run time (equalised lr); `lr_mul` slows the mapping network."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return bias_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, act={self.activation}"


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class ConvLayer(nn.Sequential):
    """Discriminator conv: [blur] -> conv (stride 2 when downsampling) -> [bias + lrelu, clamped to +-conv_clamp].

    A Sequential so parameter names match rosinality's (`conv1.0.weight`, `conv2.1.weight`, ...).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True, conv_clamp: float | None = None):
        layers = []
        if downsample:
            p = (len(BLUR_TAPS) - 2) + (kernel_size - 1)
            layers.append(Blur(((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels, conv_clamp))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and 2x upsampling.

    Computed as NVlabs' non-fused path: scale the input channels by the style, run one ordinary
    (transposed) convolution for the whole batch, scale the output channels by the demodulation
    coefficients. Mathematically the same as per-sample modulated weights (rosinality's grouped conv),
    but one large convolution instead of a batch of small ones.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate, self.upsample = demodulate, upsample
        if upsample:
            # Transposed conv with stride 2, then the blur that removes its checkerboard.
            p = (len(BLUR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), gain=4)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        styles = self.modulation(style)  # (N, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * styles[:, :, None, None].to(x.dtype)
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            x = self.blur(x)
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.kernel_size // 2)
        if self.demodulate:
            # sum_{i,k} (w[o,i,k] * s[i])^2 = (s^2) @ (sum_k w^2)^T
            coefs = torch.rsqrt(styles.square() @ weight.square().sum((2, 3)).t() + 1e-8)
            coefs = coefs[:, :, None, None].to(x.dtype)
            x = x.mul_(coefs) if not torch.is_grad_enabled() else x * coefs  # x is ours: the conv's output
        return x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, "
                f"demodulate={self.demodulate}, upsample={self.upsample}")


class NoiseInjection(nn.Module):
    """Add per-pixel noise scaled by a learned weight; `noise=None` draws fresh noise."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, inplace: bool = False) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        noise = self.weight.to(x.dtype) * noise.to(x.dtype)
        return x.add_(noise) if inplace else x + noise


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + lrelu [-> clamp to +-conv_clamp]: one synthesis layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels, conv_clamp)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None,
                add_noise: bool = True) -> torch.Tensor:
        x = self.conv(x, style)
        inplace = not torch.is_grad_enabled()  # inference: x is the conv's fresh output, reuse its memory
        if add_noise:
            x = self.noise(x, noise, inplace)
        return self.activate(x, inplace)
