"""Write any checkpoint magnet reads (ours, rosinality's, NVlabs' or TensorFlow's pickles) as rosinality's
layout or as safetensors; both load back through `load_generator` with the same outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from magnet.atomic import atomic_path
from magnet.errors import UserError
from magnet.models.rosinality import rosinality_checkpoint
from magnet.models.safetensors_format import write_safetensors
from magnet.nn.checkpoint import discriminator_from, generator_from, network_state, read_checkpoint

FORMATS = ("rosinality", "safetensors")


def _states(ckpt: dict, path) -> tuple[dict[str, dict], object]:
    """The checked state dicts of g_ema and, where the file has them, g and d; and g_ema's config."""
    g_ema = generator_from(ckpt, "g_ema", path)
    states = {"g_ema": g_ema.state_dict()}
    if not all(isinstance(v, torch.Tensor) for v in ckpt.values()):  # a bare state dict is one generator
        for key, build in (("g", generator_from), ("d", discriminator_from)):
            try:
                network_state(ckpt, key, path)
            except UserError:  # the file has no such network
                continue
            states[key] = build(ckpt, key, path, g_ema.config).state_dict()
    return states, g_ema.config


def export_checkpoint(ckpt_path, format: str, out) -> Path:
    """Write the networks of `ckpt_path` to `out` in `format` (rosinality | safetensors); returns `out`."""
    if format not in FORMATS:
        raise UserError(f"format={format!r} is not an export format; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"out={out} is a folder; give the path of the file to write, such as {out / 'model.pt'}")
    states, config = _states(read_checkpoint(ckpt_path), ckpt_path)
    if format == "rosinality" and config.conv_clamp is not None:
        warnings.warn(f"{ckpt_path} computes with conv_clamp={config.conv_clamp} and rosinality's code has no "
                      "clamp: there its images differ wherever an activation passes the clamp (magnet's loader "
                      "keeps it)", stacklevel=2)
    with atomic_path(out) as tmp:
        if format == "rosinality":
            torch.save(rosinality_checkpoint(states, config), tmp)
        else:
            write_safetensors(tmp, states, config)
    return out
