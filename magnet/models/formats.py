"""Which reader a checkpoint file needs, told by its first bytes: torch's (a zip, or torch's legacy format),
a network pickle (NVlabs' or TensorFlow StyleGAN2's) or safetensors."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

# torch.save's legacy (pre-zip) format starts with a protocol-2 pickle of this magic number
_TORCH_LEGACY = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_ZIP = b"PK\x03\x04"


def file_format(path) -> str:
    """'torch', 'pickle' (protocol 2 to 5, not torch's) or 'safetensors'; 'torch' for anything else, so that
    torch's reader names what is wrong with it."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(_TORCH_LEGACY))
    if head.startswith(_ZIP) or head.startswith(_TORCH_LEGACY):
        return "torch"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] <= path.stat().st_size - 8:
        return "safetensors"
    return "torch"


def read_network_pickle(path) -> dict:
    """A checkpoint in rosinality's layout from an NVlabs or TensorFlow StyleGAN2 network pickle."""
    from magnet.models import nvlabs, tf_stylegan2
    from magnet.models.unpickler import load_restricted

    data = load_restricted(path)
    if tf_stylegan2.is_tf_pickle(data):
        return tf_stylegan2.read_tf_pickle(data, path)
    return nvlabs.read_snapshot(data, path)


def foreign_reader(path) -> Callable[[Path], dict] | None:
    """The reader of a file that torch.load does not read, or None for torch's own files."""
    kind = file_format(path)
    if kind == "pickle":
        return read_network_pickle
    if kind == "safetensors":
        from magnet.models.safetensors_format import read_safetensors

        return read_safetensors
    return None
