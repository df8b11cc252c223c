"""What the entry points (train.py, generate.py, eval.py) share: config to objects, device, checkpoints."""

import warnings

import hydra
import rich
import rich.syntax
import torch
from omegaconf import DictConfig, OmegaConf

from magnet.errors import UserError
from magnet.nn.checkpoint import load_generator


def instantiate_group(group: DictConfig | None) -> list:
    """Every `_target_` entry of a config group (callbacks, loggers) as an object, in order."""
    if not group:
        return []
    return [hydra.utils.instantiate(entry, _convert_="all") for entry in group.values()
            if isinstance(entry, DictConfig) and "_target_" in entry]


def apply_extras(cfg: DictConfig) -> None:
    """Optional conveniences from `cfg.extras`: silence warnings, print the config as a tree."""
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        rich.print(rich.syntax.Syntax(OmegaConf.to_yaml(cfg, resolve=False), "yaml"))


def finish_loggers(loggers: list) -> None:
    """Close W&B runs, so the next job of a sweep starts its own run instead of appending to this one."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def pick_device(name: str | None) -> torch.device:
    """The named device, else the GPU when there is one, else the CPU."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def open_generator(ckpt_path, device: torch.device):
    """The generator of a checkpoint; the loader's errors name the file and what is wrong with it."""
    if ckpt_path is None:
        raise UserError("no checkpoint: give ckpt_path=/path/to/checkpoint.pt")
    return load_generator(ckpt_path, device=device)
