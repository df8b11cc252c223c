"""magnet: a SWAGAN trained on modern paintings, steered by CLIP through a genetic search."""

from .nn.checkpoint import load_discriminator, load_generator
from .nn.config import NetworkConfig
from .nn.discriminator import Discriminator
from .nn.generator import Generator


def build_generator(arch: str = "swagan", size: int = 512, style_dim: int = 512, n_mlp: int = 8,
                    channel_multiplier: int = 2, channel_max: int = 512) -> Generator:
    """A freshly initialised generator (MAGnet's published one is the default shape)."""
    return Generator(NetworkConfig(arch, size, style_dim, n_mlp, channel_multiplier, channel_max))


def build_discriminator(arch: str = "swagan", size: int = 512, channel_multiplier: int = 2,
                        channel_max: int = 512, from_rgb_kernel: int = 3) -> Discriminator:
    """A freshly initialised discriminator matching `build_generator`'s shapes."""
    config = NetworkConfig(arch, size, channel_multiplier=channel_multiplier, channel_max=channel_max)
    return Discriminator(config, from_rgb_kernel=from_rgb_kernel)


__all__ = ["build_generator", "build_discriminator", "load_generator", "load_discriminator",
           "Generator", "Discriminator", "NetworkConfig"]
