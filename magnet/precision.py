"""Precision of rendering and CLIP scoring: fp32, bf16, or auto (bf16 where the hardware runs it natively).

One place decides it for generate.py, eval.py's generation, the search preview callback and the studio:
`resolve` turns a setting into "fp32" or "bf16" for a device, `autocast` runs a block in it (CLIP included:
`magnet.clip.Clip` runs a bf16 copy of its image tower there on a CPU). Paintings that are saved are rendered
again in float32, so a file never depends on this setting.
"""

from __future__ import annotations

import contextlib

import torch

from magnet.checks import check_choice

PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(key: str, value) -> None:
    check_choice(key, value, PRECISIONS)


def has_native_bf16(device: str | torch.device) -> bool:
    """Whether `device` computes bf16 in hardware: a CUDA GPU with bf16 units, a CPU with AVX-512 BF16 or AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up with care
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def resolve(precision: str, device: str | torch.device) -> str:
    """"fp32" or "bf16": the setting `precision` (fp32 | bf16 | auto) for `device`."""
    check_precision("precision", precision)
    if precision == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: str | torch.device):
    """A context in which `device`'s matmuls and convolutions run in `precision`; fp32 changes nothing."""
    device = torch.device(device)
    if resolve(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_tf32(enabled: bool) -> None:
    """Let CUDA matmuls and cuDNN convolutions take float32 inputs in TF32 (10-bit mantissa); CPU math is
    untouched, so this is harmless without a GPU."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
