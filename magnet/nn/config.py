"""What defines a network: architecture, size, widths (its shape) and the conv clamp. Shared by both networks
and the loaders; the clamp changes no tensor shape, so two configs are the same architecture without it."""

import math
from dataclasses import asdict, dataclass

ARCHS = ("swagan", "stylegan2")
NETWORKS = ("generator", "discriminator")


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
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.size not in [2**i for i in range(5, 11)]:
            raise ValueError(f"size must be a power of two from 32 to 1024, got {self.size!r}")
        for name in ("style_dim", "n_mlp", "channel_multiplier", "channel_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        clamp = self.conv_clamp
        if clamp is not None and (isinstance(clamp, bool) or not isinstance(clamp, int | float) or not clamp > 0):
            raise ValueError(f"conv_clamp must be a positive number or None, got {clamp!r}")

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
