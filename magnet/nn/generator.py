"""The generator for both architectures: mapping(z) -> ws, synthesis(ws) -> image.

SWAGAN (arch="swagan") synthesises the Haar wavelet coefficients of the image (12 channels: 4 bands x RGB)
at half resolution and inverts the transform at the end; its skip connections upsample in pixel space
(inverse transform, blur-upsample, transform). StyleGAN2 (arch="stylegan2") synthesises RGB directly.
"""

import torch
from torch import nn

from .config import NetworkConfig
from .layers import ConstantInput, EqualLinear, ModulatedConv2d, PixelNorm, StyledConv, upsample_blur
from .wavelets import haar_dwt, haar_iwt

NOISE_MODES = ("const", "random", "none")


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (or to its 12 wavelet bands) [clamped to +-conv_clamp], added to the upsampled
    skip image."""

    def __init__(self, in_channels: int, style_dim: int, wavelet: bool, upsample: bool = True,
                 conv_clamp: float | None = None):
        super().__init__()
        out_channels = 12 if wavelet else 3
        self.wavelet, self.conv_clamp = wavelet, conv_clamp
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        if upsample:
            self.upsample = upsample_blur()

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None):
        out = self.conv(x, style) + self.bias.to(x.dtype)
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            skip = haar_dwt(self.upsample(haar_iwt(skip))) if self.wavelet else self.upsample(skip)
            out = out + skip
        return out


def style_mix(ws: torch.Tensor, ws2: torch.Tensor, inject_index: int) -> torch.Tensor:
    """W+ that takes layers [0, inject_index) from `ws` and the rest from `ws2` (style mixing)."""
    return torch.cat([ws[:, :inject_index], ws2[:, inject_index:]], dim=1)


class Generator(nn.Module):
    def __init__(self, config: NetworkConfig, lr_mlp: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.config = config
        self.size, self.style_dim = config.size, config.style_dim
        self.w_avg_beta = w_avg_beta  # decay of the tracked average w that truncation pulls towards
        ch, sd, clamp = config.channels, config.style_dim, config.conv_clamp

        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(sd, sd, lr_mul=lr_mlp, activation=True) for _ in range(config.n_mlp)]
        )
        self.register_buffer("w_avg", torch.zeros(sd))

        self.input = ConstantInput(ch(4))
        self.conv1 = StyledConv(ch(4), ch(4), 3, sd, conv_clamp=clamp)
        self.to_rgb1 = ToRGB(ch(4), sd, config.wavelet, upsample=False, conv_clamp=clamp)

        self.log_size = config.log_size
        self.num_layers = (self.log_size - 2) * 2 + 1  # synthesis layers, one noise map each
        self.n_latent = self.log_size * 2 - 2  # W+ vectors: num_layers + one per ToRGB, shared pairwise

        self.noises = nn.Module()
        for idx in range(self.num_layers):
            res = 2 ** ((idx + 5) // 2)
            self.noises.register_buffer(f"noise_{idx}", torch.randn(1, 1, res, res))

        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        in_channels = ch(4)
        for i in range(3, self.log_size + 1):
            out_channels = ch(2**i)
            self.convs.append(StyledConv(in_channels, out_channels, 3, sd, upsample=True, conv_clamp=clamp))
            self.convs.append(StyledConv(out_channels, out_channels, 3, sd, conv_clamp=clamp))
            self.to_rgbs.append(ToRGB(out_channels, sd, config.wavelet, conv_clamp=clamp))
            in_channels = out_channels

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (N, style_dim) -> ws (N, n_latent, style_dim); in training mode also tracks the average w."""
        if z.ndim != 2 or z.shape[1] != self.style_dim:
            raise ValueError(f"z must have shape (N, {self.style_dim}), got {tuple(z.shape)}")
        w = self.style(z)
        if self.training:
            self.w_avg.copy_(w.detach().mean(0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w.unsqueeze(1).repeat(1, self.n_latent, 1)

    @torch.no_grad()
    def mean_w(self, n: int = 10_000, seed: int = 0) -> torch.Tensor:
        """The mean of w over `n` seeded samples of z (for checkpoints that carry no tracked average)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.w_avg.device)
        return torch.cat([self.style(chunk) for chunk in z.split(2048)]).mean(0)

    def noise_maps(self, noise_mode: str) -> list[torch.Tensor | None]:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise_mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        return [None] * self.num_layers

    @property
    def image_sizes(self) -> list[int]:
        """px of the image after each block, the lowest first (SWAGAN's skip is at half that, in wavelets)."""
        return [2 ** (i + self.config.wavelet) for i in range(2, self.log_size + 1)]

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random",
                  noise: list[torch.Tensor] | None = None, stop_at: int | None = None) -> torch.Tensor:
        """ws: W (N, style_dim) or W+ (N, n_latent, style_dim) -> images (N, 3, size, size) in ~[-1, 1].

        `stop_at` (one of `image_sizes`) skips the blocks above that size and returns the image there: the
        inverse Haar transform of that block's skip (SWAGAN) or its ToRGB sum (StyleGAN2), a cheap preview.
        """
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).repeat(1, self.n_latent, 1)
        if ws.ndim != 3 or ws.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(
                f"ws must be (N, {self.style_dim}) or (N, {self.n_latent}, {self.style_dim}), "
                f"got {tuple(ws.shape)}"
            )
        if stop_at is not None and stop_at not in self.image_sizes:
            raise ValueError(f"stop_at must be one of {self.image_sizes} (px), got {stop_at!r}")
        blocks = self.image_sizes.index(stop_at or self.size)  # blocks run after the first
        noise = noise if noise is not None else self.noise_maps(noise_mode)
        add_noise = noise_mode != "none" or any(n is not None for n in noise)

        x = self.input(ws.shape[0]).to(ws.dtype)
        if not torch.is_grad_enabled():
            # Inference in NHWC: every convolution follows its input's layout, and mkldnn's NHWC kernels run
            # this generator 1.2x (float32) to 1.5x (bf16) faster on the CPU (benchmarks/RESULTS.md).
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.conv1(x, ws[:, 0], noise[0], add_noise)
        skip = self.to_rgb1(x, ws[:, 1])
        i = 1
        for conv_up, conv, to_rgb in zip(self.convs[: 2 * blocks : 2], self.convs[1 : 2 * blocks : 2],
                                         self.to_rgbs[:blocks]):
            x = conv_up(x, ws[:, i], noise[i], add_noise)
            x = conv(x, ws[:, i + 1], noise[i + 1], add_noise)
            skip = to_rgb(x, ws[:, i + 2], skip)
            i += 2
        return (haar_iwt(skip) if self.config.wavelet else skip).contiguous()

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "random") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)
