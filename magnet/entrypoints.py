"""What the entry points (train.py, generate.py, eval.py) share: config to objects, device, checkpoints."""

import contextlib
import re
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path

import hydra
import rich
import rich.syntax
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger

from magnet.checks import check_bool, check_device
from magnet.errors import ConfigError, UserError
from magnet.nn.checkpoint import load_generator
from magnet.precision import use_tf32

OUR_PACKAGES = ("magnet.", "data_modules.")  # their constructors raise ConfigError themselves
_FAILED_CALL = re.compile(r"Error in call to target '(?P<target>[^']+)'.*?(?:\nfull_key: (?P<key>\S+))?\s*$", re.S)


def check_required(cfg: DictConfig) -> None:
    """Refuse a config with a mandatory value (`???`) left unset, naming the keys."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        given = " ".join(f"{key}=..." for key in missing)
        raise UserError(f"{', '.join(missing)} not set: give {given} on the command line")


def instantiate(node: DictConfig, key: str, **kwargs):
    """`hydra.utils.instantiate(node, _convert_="all")`, a bad setting reported as one UserError naming its
    config key (`key` is where `node` sits: `model`, `callbacks.samples`).

    Our constructors raise a ConfigError naming their argument, which gets the key in front (`model.lr=-1`).
    Other libraries' settings (Lightning's Trainer, loggers) are first checked against the constructor's
    type annotations, and what their constructor refuses is reported under the key too.
    """
    check_annotations(node, key)
    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        reported = _refusal(err, node, key)
        if reported is None:
            raise
        raise reported from err


def instantiate_group(group: DictConfig | None, key: str) -> list:
    """Every `_target_` entry of a config group (callbacks, loggers) as an object, in order."""
    if not group:
        return []
    return [instantiate(entry, f"{key}.{name}") for name, entry in group.items()
            if isinstance(entry, DictConfig) and "_target_" in entry]


def check_annotations(node: DictConfig, key: str) -> None:
    """Each setting of a `_target_` node (and of the nodes nested in it) against the target's type hints."""
    target = hydra.utils.get_object(node._target_)
    try:
        hints = typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    except Exception:  # hints naming what only a type checker imports: nothing to check against
        hints = {}
    for name, value in node.items():
        nested = _nested_targets(value, f"{key}.{name}")
        for nested_key, nested_node in nested:
            check_annotations(nested_node, nested_key)
        if nested or name not in hints:  # a nested node is an object by the time the target gets it
            continue
        plain = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        if not _accepts(hints[name], plain):
            raise ConfigError(f"{key}.{name}", plain, _describe(hints[name]))


def _nested_targets(value, key: str) -> list[tuple[str, DictConfig]]:
    """The `_target_` nodes a setting holds (itself, or the items of a list), with their keys."""
    items = [(f"{key}[{i}]", item) for i, item in enumerate(value)] if isinstance(value, ListConfig) else [(key, value)]
    return [(k, item) for k, item in items if isinstance(item, DictConfig) and "_target_" in item]


def _accepts(hint, value) -> bool:
    """Whether `value` fits the type hint; hints it cannot judge (callables, type variables) accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    cls = origin or hint
    if cls is type(None):
        return value is None
    if cls in (int, float):  # a bool is no number here, an int is a float
        return not isinstance(value, bool) and isinstance(value, int if cls is int else int | float)
    if cls in (list, tuple):  # YAML has lists only
        return isinstance(value, list | tuple)
    if cls is Path:
        return isinstance(value, str | Path)
    return isinstance(value, cls) if isinstance(cls, type) else True


def _describe(hint) -> str:
    """A type hint in words: 'an integer or null', "one of 64, 32, '16-mixed' or null"."""
    words = {type(None): "null", int: "an integer", float: "a number", bool: "true or false", str: "a string",
             Path: "a path", list: "a list", tuple: "a list", dict: "a mapping"}

    def alternatives(h) -> list[str]:
        origin = typing.get_origin(h)
        if origin in (typing.Union, types.UnionType):
            return [w for arg in typing.get_args(h) for w in alternatives(arg)]
        if origin is typing.Literal:
            return [repr(arg) for arg in typing.get_args(h)]
        cls = origin or h
        return [words.get(cls) or f"a {getattr(cls, '__name__', cls)}"]

    found = list(dict.fromkeys(alternatives(hint)))
    return found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"


def _refusal(err: InstantiationException, node: DictConfig, key: str) -> UserError | None:
    """The UserError to report for a constructor that refused its settings; None for a bug."""
    call = _FAILED_CALL.match(str(err))
    if call is None:
        return None
    path, cause = call["key"] or key, err.__cause__
    if path != key and not path.startswith(f"{key}."):  # Hydra's key is relative when kwargs were merged in
        path = f"{key}.{path}"
    if isinstance(cause, ConfigError):
        return with_source(cause.under(path), node._get_root())
    if isinstance(cause, UserError):
        return type(cause)(f"{path}: {cause}")
    if call["target"].startswith(OUR_PACKAGES) or not isinstance(cause, _library_refusals()):
        return None
    return UserError(_name_setting(path, node if path == key else {}, cause))


@contextlib.contextmanager
def settings_of(cfg: DictConfig, key: str):
    """Report a ConfigError raised inside as a setting under `key` of `cfg` (see `with_source`)."""
    try:
        yield
    except ConfigError as err:
        raise with_source(err.under(key), cfg) from err


def with_source(err: ConfigError, root: DictConfig) -> UserError:
    """Say where a setting got its value when it (or a group above it) is an interpolation, as the user may
    have set the other key: `model.network.size=100: ... (model.network.size is ${data.size})`."""
    parts = err.key.split(".")
    for end in range(len(parts), 0, -1):
        parent_key, name = ".".join(parts[: end - 1]), parts[end - 1]
        parent = OmegaConf.select(root, parent_key) if parent_key else root
        if isinstance(parent, DictConfig) and name in parent and OmegaConf.is_interpolation(parent, name):
            return UserError(f"{err} ({'.'.join(parts[:end])} is {parent._get_node(name)._value()})")
    return err


def _library_refusals() -> tuple:
    """What a library's constructor raises for a setting it refuses."""
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    return ValueError, TypeError, AssertionError, ImportError, MisconfigurationException


def _name_setting(key: str, settings: Mapping, cause: Exception) -> str:
    """`key.name=value: <the library's message>` for the setting the message names (by name, else by a
    string value), else `key: <message>`; always one line."""
    message = " ".join(str(cause).split()) or type(cause).__name__
    found = []
    for name in settings:
        value = settings[name]
        by_name = re.search(rf"(?<![\w-]){re.escape(str(name))}(?![\w-])", message, re.I)
        by_value = isinstance(value, str) and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", message, re.I)
        if by_name or by_value:
            found.append(((by_name or by_value).start(), not by_name, name, value))
    if not found:
        return f"{key}: {message}"
    _, _, name, value = min(found)
    return f"{key}.{name}={value!r}: {message}"


def apply_extras(cfg: DictConfig) -> None:
    """Optional conveniences from `cfg.extras`: silence warnings, print the config as a tree, TF32 on CUDA."""
    extras = cfg.get("extras") or {}
    for name in ("ignore_warnings", "print_config", "tf32"):
        if name in extras:
            check_bool(f"extras.{name}", extras[name])
    if "tf32" in extras:
        use_tf32(extras.tf32)
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        rich.print(rich.syntax.Syntax(OmegaConf.to_yaml(cfg, resolve=False), "yaml"))


@contextlib.contextmanager
def closing_loggers(loggers: list):
    """Close the W&B run when the block ends (marked failed when it raised), so the next job of a sweep
    starts its own run instead of appending to this one."""
    try:
        yield
    except BaseException:
        _finish_wandb(loggers, exit_code=1)
        raise
    _finish_wandb(loggers, exit_code=0)


def _finish_wandb(loggers: list, exit_code: int) -> None:
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish(exit_code=exit_code)


def pick_device(name: str | None) -> torch.device:
    """The named device, else the GPU when there is one, else the CPU."""
    check_device("device", name)
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def open_generator(ckpt_path, device: torch.device):
    """The generator of a checkpoint; the loader's errors name the file and what is wrong with it."""
    if ckpt_path is None:
        raise UserError("no checkpoint: give ckpt_path=/path/to/checkpoint.pt")
    return load_generator(ckpt_path, device=device)
