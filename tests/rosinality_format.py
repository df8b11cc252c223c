"""rosinality-format checkpoints of freshly built tiny networks, as rosinality's train.py writes them.

The layout itself is written by magnet.models.rosinality (the package's export); tests check it against
rosinality's own key layout (fixtures/rosinality_layout.json) and a naive forward pass reading its filters.
"""

import argparse

import torch

from magnet import build_discriminator, build_generator
from magnet.models.rosinality import discriminator_state, generator_state


def _randomise(module):
    """Nonzero noise weights and biases, so every path of the reference comparison is exercised."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1 if "modulation" in name else 0))


def save_rosinality(path, arch, size, from_rgb_kernel=3, **shape):
    """A checkpoint in rosinality's format (as train.py writes it), from freshly built networks."""
    torch.manual_seed(0)
    G = build_generator(arch, size, **shape)
    D = build_discriminator(arch, size, channel_multiplier=shape["channel_multiplier"],
                            channel_max=shape["channel_max"], from_rgb_kernel=from_rgb_kernel)
    _randomise(G)
    _randomise(D)
    wavelet = arch == "swagan"
    g_state = generator_state(G.state_dict(), wavelet)
    args = argparse.Namespace(arch=arch, size=size, latent=shape["style_dim"], n_mlp=shape["n_mlp"],
                              channel_multiplier=shape["channel_multiplier"], r1=10.0)
    torch.save({"g": g_state, "g_ema": g_state, "d": discriminator_state(D.state_dict(), wavelet),
                "g_optim": {}, "d_optim": {}, "args": args, "ada_aug_p": 0.1}, path)
    return g_state, discriminator_state(D.state_dict(), wavelet)
