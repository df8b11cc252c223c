"""Write our networks' weights in rosinality's checkpoint format, constant filter buffers included.

The buffers are rebuilt here from rosinality's definitions (the [1, 3, 3, 1] blur, the Haar filters
with its inverse storing lh and hl negated), independently of magnet.nn.
"""

import argparse
import re

import torch

from magnet import build_discriminator, build_generator

_BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])
BLUR = torch.outer(_BLUR, _BLUR) / 64
_L = torch.tensor([[1.0, 1.0]]) / 2**0.5
_H = torch.tensor([[-1.0, 1.0]]) / 2**0.5
HAAR = {"ll": _L.T * _L, "lh": _H.T * _L, "hl": _L.T * _H, "hh": _H.T * _H}
INVERSE_HAAR = {"ll": HAAR["ll"], "lh": -HAAR["lh"], "hl": -HAAR["hl"], "hh": HAAR["hh"]}


def _haar(prefix, filters):
    return {f"{prefix}{band}": f.clone() for band, f in filters.items()}


def generator_state(state: dict, wavelet: bool) -> dict:
    out = dict(state)
    out.pop("w_avg", None)
    for key in state:
        if m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", key):
            if int(m.group(1)) % 2 == 0:
                out[f"convs.{m.group(1)}.conv.blur.kernel"] = BLUR * 4
        if m := re.fullmatch(r"to_rgbs\.(\d+)\.bias", key):
            p = f"to_rgbs.{m.group(1)}."
            out[p + "upsample.kernel"] = BLUR * 4
            if wavelet:
                out.update(_haar(p + "iwt.", INVERSE_HAAR) | _haar(p + "dwt.", HAAR))
    if wavelet:
        out.update(_haar("iwt.", INVERSE_HAAR))
    return out


def discriminator_state(state: dict, wavelet: bool) -> dict:
    out = dict(state)
    for key in state:
        if m := re.fullmatch(r"convs\.(\d+)\.conv2\.1\.weight", key):
            out[f"convs.{m.group(1)}.conv2.0.kernel"] = BLUR.clone()
        if m := re.fullmatch(r"convs\.(\d+)\.skip\.1\.weight", key):
            out[f"convs.{m.group(1)}.skip.0.kernel"] = BLUR.clone()
        if (m := re.fullmatch(r"from_rgbs\.(\d+)\.conv\.0\.weight", key)) and m.group(1) != "0":
            p = f"from_rgbs.{m.group(1)}."
            out[p + "downsample.kernel"] = BLUR.clone()
            out.update(_haar(p + "iwt.", INVERSE_HAAR) | _haar(p + "dwt.", HAAR))
    if wavelet:
        out.update(_haar("dwt.", HAAR))
    return out


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
