"""What defines a network's shape: architecture, size, widths. Shared by both networks and the loaders."""

import math
from dataclasses import asdict, dataclass

ARCHS = ("swagan", "stylegan2")


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "swagan"  # "swagan" (wavelet) or "stylegan2"
    size: int = 512  # output resolution in pixels, a power of two from 32 to 1024
    style_dim: int = 512  # dimension of z and w
    n_mlp: int = 8  # layers of the mapping network
    channel_multiplier: int = 2  # width of the layers at 64 px and above (rosinality's convention)
    channel_max: int = 512  # cap on any layer's width; small values build tiny test models

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.size not in [2**i for i in range(5, 11)]:
            raise ValueError(f"size must be a power of two from 32 to 1024, got {self.size!r}")
        for name in ("style_dim", "n_mlp", "channel_multiplier", "channel_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

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

    def describe(self) -> str:
        return (f"{self.arch} {self.size}px style_dim={self.style_dim} n_mlp={self.n_mlp} "
                f"channel_multiplier={self.channel_multiplier} channel_max={self.channel_max}")

    def to_dict(self) -> dict:
        return asdict(self)
