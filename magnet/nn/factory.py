"""Freshly initialised networks by their shape, with MAGnet's published model as the default."""

from .config import NetworkConfig
from .discriminator import Discriminator
from .generator import Generator


def build_generator(arch: str = "swagan", size: int = 512, style_dim: int = 512, n_mlp: int = 8,
                    channel_multiplier: int = 2, channel_max: int = 512) -> Generator:
    """A freshly initialised generator (MAGnet's published one is the default shape)."""
    return Generator(NetworkConfig(arch, size, style_dim, n_mlp, channel_multiplier, channel_max))


def build_discriminator(arch: str = "swagan", size: int = 512, channel_multiplier: int = 2,
                        channel_max: int = 512, from_rgb_kernel: int = 3) -> Discriminator:
    """A freshly initialised discriminator matching `build_generator`'s shapes."""
    config = NetworkConfig(arch, size, channel_multiplier=channel_multiplier, channel_max=channel_max)
    return Discriminator(config, from_rgb_kernel=from_rgb_kernel)
