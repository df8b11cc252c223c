"""What defines a network: architecture, size, widths (its shape) and the conv clamp. Shared by both networks
and the loaders; the clamp changes no tensor shape, so two configs are the same architecture without it."""

import math
from dataclasses import asdict, dataclass

from magnet.checks import check_choice, check_float, check_int

ARCHS = ("swagan", "stylegan2")
NETWORKS = ("generator", "discriminator")
SIZES = tuple(2**i for i in range(5, 11))  # px: 32 to 1024


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "swagan"  # "swagan" (wavelet) or "stylegan2"
    size: int = 512  # output resolution in pixels, a power of two from 32 to 1024
    style_dim: int = 512  # dimension of z and w
    n_mlp: int = 8  # layers of the mapping network
    channel_multiplier: int = 2  # width of the layers at 64 px and above (rosinality's convention)
    channel_max: int = 512  # cap on any layer's width; small values build tiny test models
    conv_clamp: float | None = None  # clamp conv outputs to +-X (NVlabs' published models: 256); None: off

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        check_choice("size", self.size, SIZES)
        for name in ("style_dim", "n_mlp", "channel_multiplier", "channel_max"):
            check_int(name, getattr(self, name), at_least=1)
        check_float("conv_clamp", self.conv_clamp, above=0, optional=True)

    @property
    def wavelet(self) -> bool:
        return self.arch == "swagan"

    def channels(self, res: int) -> int:
        """Feature maps at a resolution: 512 up to 32 px, then 16384 * multiplier / res, capped."""
        width = 512 if res <= 32 else 256 * self.channel_multiplier * 64 // res
        return min(self.channel_max, width)

    @property
    def log_size(self) -> int:
        """log2 of the last feature-map resolution (SWAGAN works at half size in wavelet space)."""
        return int(math.log2(self.size)) - (1 if self.wavelet else 0)

    def widths(self, network: str) -> dict[int, int]:
        """Width per resolution of every layer of the "generator" or the "discriminator" (all its shapes
        depend on besides arch, size, style_dim and n_mlp). SWAGAN's discriminator skips size / 2."""
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
        top = [self.log_size] if network == "generator" else [int(math.log2(self.size))]
        return {2**i: self.channels(2**i) for i in [*range(2, self.log_size), *top]}

    def shape(self, network: str) -> dict:
        """What the network's tensor shapes depend on: two configs with equal shapes build the same network."""
        fields = {"arch": self.arch, "size": self.size}
        if network == "generator":
            fields.update(style_dim=self.style_dim, n_mlp=self.n_mlp)
        return {**fields, "channels": self.widths(network)}

    def describe(self, network: str) -> str:
        """The network's shape in words, e.g. "swagan 64px style_dim=512 n_mlp=8 channels 512 at 4-32 px"."""
        shape = self.shape(network)
        words = [f"{shape.pop('arch')} {shape.pop('size')}px"]
        words += [f"{k}={shape.pop(k)}" for k in ("style_dim", "n_mlp") if k in shape]
        return " ".join(words) + " channels " + describe_widths(shape["channels"])

    def to_dict(self) -> dict:
        return asdict(self)


def describe_widths(widths: dict[int, int]) -> str:
    """{4: 512, 8: 512, 64: 256} -> "512 at 4-8 px, 256 at 64 px" (runs of equal width, resolution doubling)."""
    runs = []
    for res, width in sorted(widths.items()):
        if runs and runs[-1][2] == width and runs[-1][1] * 2 == res:
            runs[-1][1] = res
        else:
            runs.append([res, res, width])
    return ", ".join(f"{w} at {lo}-{hi} px" if lo != hi else f"{w} at {lo} px" for lo, hi, w in runs)
