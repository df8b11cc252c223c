"""Checkpoints as safetensors: tensors and a JSON header only, nothing to unpickle, for sharing models safely.

Layout: one tensor per `<network>.<name>` (g_ema, and g, d when written; our state dicts' names, which are
rosinality's without its constant filters) and in the metadata `format: magnet` and `network`, our config as
JSON (conv_clamp included), for the loader.
"""

from __future__ import annotations

import json

import torch

from magnet.errors import UserError
from magnet.nn import NetworkConfig

FORMAT = "magnet"


def write_safetensors(path, states: dict[str, dict[str, torch.Tensor]], config: NetworkConfig) -> None:
    """Write our state dicts by key (`g_ema`, `g`, `d`) to one safetensors file."""
    from safetensors.torch import save_file

    tensors = {f"{key}.{name}": value.detach().contiguous().clone() for key, state in states.items()
               for name, value in state.items()}
    save_file(tensors, str(path), metadata={"format": FORMAT, "network": json.dumps(config.to_dict())})


def read_safetensors(path) -> dict:
    """A checkpoint dict (networks by key, `network`) from a safetensors file; other files' tensors come back
    grouped by the first part of their names, so that the loader says what they are not."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        network = json.loads(metadata["network"]) if "network" in metadata else None
    except Exception as err:  # safetensors' own errors for a bad header or a file cut short
        raise UserError(f"checkpoint {path} is a corrupt or cut short safetensors file ({err}); "
                        "write or download it again") from None
    ckpt = {}
    for name, value in tensors.items():
        key, _, rest = name.partition(".")
        ckpt.setdefault(key, {})[rest] = value
    ours = metadata.get("format") == FORMAT
    ckpt["converted_from"] = (f"a safetensors file of magnet's ({', '.join(ckpt)})" if ours else
                              f"a safetensors file of another model ({len(tensors)} tensors such as "
                              f"{next(iter(tensors), 'none')})")
    if ours and isinstance(network, dict):
        ckpt["network"] = network
    return ckpt
