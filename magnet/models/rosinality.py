"""Our networks' weights in rosinality's checkpoint layout, so that its scripts and the projects built on them
(StyleCLIP, StyleGAN-NADA, pixel2style2pixel, encoder4editing) read our models.

rosinality keeps its constant FIR and Haar filters in the state dict as buffers; they are written here from
its definitions (the [1, 3, 3, 1] blur, four times it where it upsamples; the Haar filters, its inverse
transform storing lh and hl negated). Its generators have no tracked w: ours goes to `latent_avg`, where
rosinality's convert_weight.py puts TF's. `network` (our config, conv_clamp included) is for magnet's loader;
other readers ignore it.
"""

from __future__ import annotations

import re

import torch

from magnet.nn import NetworkConfig
from magnet.nn.layers import BLUR_TAPS

_TAPS = torch.tensor(BLUR_TAPS, dtype=torch.float32)
BLUR = torch.outer(_TAPS, _TAPS) / _TAPS.sum() ** 2
_L = torch.tensor([[1.0, 1.0]]) / 2**0.5
_H = torch.tensor([[-1.0, 1.0]]) / 2**0.5
HAAR = {"ll": _L.T * _L, "lh": _H.T * _L, "hl": _L.T * _H, "hh": _H.T * _H}
INVERSE_HAAR = {"ll": HAAR["ll"], "lh": -HAAR["lh"], "hl": -HAAR["hl"], "hh": HAAR["hh"]}


def _haar(prefix: str, filters: dict) -> dict:
    return {f"{prefix}{band}": f.clone() for band, f in filters.items()}


def generator_state(state: dict, wavelet: bool) -> dict:
    """Our generator's state dict as rosinality's Generator (stylegan2) or swagan Generator has it."""
    out = dict(state)
    out.pop("w_avg", None)
    for key in state:
        if (m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", key)) and int(m.group(1)) % 2 == 0:
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
    """Our discriminator's state dict as rosinality's Discriminator (stylegan2) or swagan's has it."""
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


def rosinality_checkpoint(states: dict[str, dict], config: NetworkConfig) -> dict:
    """The dict rosinality's train.py saves (without optimizers and args) from our state dicts by key
    (`g_ema`, and `g`, `d` when given)."""
    ckpt = {key: (discriminator_state(state, config.wavelet) if key == "d" else generator_state(state, config.wavelet))
            for key, state in states.items()}
    ckpt["latent_avg"] = states["g_ema"]["w_avg"].clone()
    ckpt["network"] = config.to_dict()
    return ckpt
