"""Checks of settings, for constructors and entry points: each raises a ConfigError naming the setting.

Values come from the command line, so a number may arrive as a string ('abc') or a bool: both are refused
here rather than failing later in a comparison. No heavy imports (the data workers import this too).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from pathlib import Path

from magnet.errors import ConfigError, MissingPathError

_BOUNDS = {"at_least": (">=", operator.ge), "above": (">", operator.gt), "at_most": ("<=", operator.le),
           "below": ("<", operator.lt)}


def _check_range(key: str, value, is_kind: bool, kind: str, optional: bool, **bounds) -> None:
    """Refuse `value` unless it is of the kind and within the bounds (names from _BOUNDS; None: no bound)."""
    if optional and value is None:
        return
    bounds = {name: bound for name, bound in bounds.items() if bound is not None}
    if is_kind and all(_BOUNDS[name][1](value, bound) for name, bound in bounds.items()):
        return
    limits = " and ".join(f"{_BOUNDS[name][0]} {bound}" for name, bound in bounds.items())
    raise ConfigError(key, value, ("null or " if optional else "") + kind + (f" {limits}" if limits else ""))


def check_int(key: str, value, at_least=None, at_most=None, optional: bool = False) -> None:
    """An integer within the bounds (None too when `optional`)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    _check_range(key, value, is_int, "an integer", optional, at_least=at_least, at_most=at_most)


def check_float(key: str, value, at_least=None, at_most=None, above=None, below=None,
                optional: bool = False) -> None:
    """A finite number (an int is one too) within the bounds (None too when `optional`)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    _check_range(key, value, is_number, "a number", optional, at_least=at_least, above=above, at_most=at_most,
                 below=below)


def check_bool(key: str, value) -> None:
    """true or false (a string such as 'yes' would silently count as true)."""
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")


def check_text(key: str, value) -> None:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, value, "a non-empty text")


def check_texts(key: str, value) -> None:
    """A non-empty list of non-empty strings."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value or \
            not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(key, value, "a non-empty list of texts")


def check_choice(key: str, value, choices: Sequence) -> None:
    """One of `choices` (of the same type: 64.0 is not the size 64)."""
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ConfigError(key, value, "one of " + ", ".join(map(str, choices)))


def check_file(key: str, value, optional: bool = False, what: str = "file") -> None:
    """The path of an existing file (None too when `optional`); `what` names what it should hold."""
    if optional and value is None:
        return
    if not isinstance(value, str | Path) or not Path(value).expanduser().is_file():
        raise MissingPathError(key, str(value) if isinstance(value, Path) else value, f"an existing {what}")


def check_dir(key: str, value, optional: bool = False, what: str = "folder") -> None:
    """The path of an existing folder (None too when `optional`)."""
    if optional and value is None:
        return
    if not isinstance(value, str | Path) or not Path(value).expanduser().is_dir():
        raise MissingPathError(key, str(value) if isinstance(value, Path) else value, f"an existing {what}")


def check_device(key: str, value) -> None:
    """A torch device this machine has ('cpu', 'cuda', 'cuda:1', 'mps'), or None for the default."""
    if value is None:
        return
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ConfigError(key, value, "a torch device (cpu, cuda, cuda:<index>, mps) or null") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(key, value, f"a device this machine has ({torch.cuda.device_count()} CUDA GPUs): cpu or null")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(key, value, "a device this machine has (no MPS here): cpu or null")
