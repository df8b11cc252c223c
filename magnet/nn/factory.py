"""Freshly initialised networks by their shape; NetworkConfig's defaults are MAGnet's published model."""

import torch

from .config import NetworkConfig
from .discriminator import Discriminator
from .generator import Generator


def build_generator(*args, **config) -> Generator:
    """A new generator: `build_generator("swagan", 256, channel_max=64)` takes NetworkConfig's fields."""
    return Generator(NetworkConfig(*args, **config))


def build_discriminator(*args, from_rgb_kernel: int = 3, **config) -> Discriminator:
    """A new discriminator of the same shape fields (its own: `from_rgb_kernel`, SWAGAN's FromRGB conv)."""
    return Discriminator(NetworkConfig(*args, **config), from_rgb_kernel=from_rgb_kernel)


def to_channels_last(module: torch.nn.Module) -> None:
    """Its 4-d weights and buffers in NHWC layout, in place (`Module.to` refuses the 5-d modulated weights)."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
