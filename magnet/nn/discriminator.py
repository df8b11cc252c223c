"""The discriminator for both architectures.

StyleGAN2: residual blocks on RGB. SWAGAN: the image enters as Haar wavelet bands; at every scale a
FromRGB reads the (downsampled) bands and adds them to the features. Both end in the same epilogue:
minibatch standard deviation, a 3x3 conv and two linear layers. With `conv_clamp` every activated conv
(not the skips, not the linear layers) is clipped to +-conv_clamp, as in NVlabs' networks.
"""

import math

import torch
from torch import nn

from .config import NetworkConfig
from .layers import ConvLayer, EqualLinear, downsample_blur
from .wavelets import haar_dwt, haar_iwt


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the mean (over features and pixels) std of each group of samples as one more channel."""
    n, c, h, w = x.shape
    group = min(n, group_size)
    while n % group:  # the reference fails on such batches; use the largest group that divides them
        group -= 1
    y = x.view(group, -1, 1, c, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    return torch.cat([x, y.repeat(group, 1, h, w)], dim=1)


class ResBlock(nn.Module):
    """StyleGAN2 residual block: two 3x3 convs (the second downsamples) plus a 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, conv_clamp=conv_clamp)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, conv_clamp=conv_clamp)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class ConvBlock(nn.Module):
    """SWAGAN block: two 3x3 convs, the second downsamples."""

    def __init__(self, in_channels: int, out_channels: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, conv_clamp=conv_clamp)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, conv_clamp=conv_clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class FromRGB(nn.Module):
    """Read wavelet bands into features; the bands are first halved in resolution in pixel space."""

    def __init__(self, out_channels: int, downsample: bool, kernel_size: int = 3, conv_clamp: float | None = None):
        super().__init__()
        if downsample:
            self.downsample = downsample_blur()
        self.conv = ConvLayer(12, out_channels, kernel_size, conv_clamp=conv_clamp)

    def forward(self, bands: torch.Tensor, skip: torch.Tensor | None = None):
        if hasattr(self, "downsample"):
            bands = haar_dwt(self.downsample(haar_iwt(bands)))
        out = self.conv(bands)
        return bands, out if skip is None else out + skip


class Discriminator(nn.Module):
    def __init__(self, config: NetworkConfig, from_rgb_kernel: int = 3):
        """`from_rgb_kernel`: SWAGAN's FromRGB conv size; 3 in rosinality since 2021-11, 1 in MAGnet's copy."""
        super().__init__()
        self.config = config
        self.from_rgb_kernel = from_rgb_kernel
        self.size = config.size
        ch, clamp = config.channels, config.conv_clamp
        log_size = config.log_size
        in_channels = ch(config.size)
        if config.wavelet:
            self.from_rgbs, self.convs = nn.ModuleList(), nn.ModuleList()
            for i in range(log_size, 2, -1):
                out_channels = ch(2 ** (i - 1))
                self.from_rgbs.append(FromRGB(in_channels, i != log_size, from_rgb_kernel, clamp))
                self.convs.append(ConvBlock(in_channels, out_channels, clamp))
                in_channels = out_channels
            self.from_rgbs.append(FromRGB(ch(4), True, from_rgb_kernel, clamp))
        else:
            blocks = [ConvLayer(3, in_channels, 1, conv_clamp=clamp)]
            for i in range(log_size, 2, -1):
                out_channels = ch(2 ** (i - 1))
                blocks.append(ResBlock(in_channels, out_channels, clamp))
                in_channels = out_channels
            self.convs = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(in_channels + 1, ch(4), 3, conv_clamp=clamp)
        self.final_linear = nn.Sequential(
            EqualLinear(ch(4) * 4 * 4, ch(4), activation=True),
            EqualLinear(ch(4), 1),
        )

    def feature_maps(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Images (N, 3, size, size) -> every block's output, finest first; the last is (N, C, 4, 4)."""
        if img.shape[-2:] != (self.size, self.size):
            raise ValueError(f"discriminator expects {self.size}x{self.size} images, got {tuple(img.shape)}")
        maps = []
        if not self.config.wavelet:
            out = img
            for block in self.convs:
                out = block(out)
                maps.append(out)
            return maps
        bands, out = haar_dwt(img), None
        for from_rgb, conv in zip(self.from_rgbs, self.convs):
            bands, out = from_rgb(bands, out)
            out = conv(out)
            maps.append(out)
        maps[-1] = self.from_rgbs[-1](bands, out)[1]
        return maps

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, size, size) -> features (N, C, 4, 4) before the epilogue."""
        return self.feature_maps(img)[-1]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Images -> realness logits (N, 1)."""
        out = self.final_conv(minibatch_stddev(self.features(img)))
        return self.final_linear(out.flatten(1))
