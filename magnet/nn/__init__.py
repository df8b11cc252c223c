"""Networks in plain PyTorch: ops, wavelets, layers, generator, discriminator, checkpoint I/O."""

from .config import ARCHS, NetworkConfig
from .discriminator import Discriminator
from .generator import Generator, style_mix

__all__ = ["ARCHS", "NetworkConfig", "Generator", "Discriminator", "style_mix"]
