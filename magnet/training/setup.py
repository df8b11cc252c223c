"""Small pieces the entry points use to turn a composed config into running objects."""

import warnings

import hydra
import rich
import rich.syntax
from omegaconf import DictConfig, OmegaConf


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
