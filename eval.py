"""Evaluate a generator checkpoint against a folder of images: metrics by name written to JSON.

python eval.py ckpt_path=magnet data_dir=data/modern metrics.names=[fid50k_full,kid50k_full]
python eval.py ckpt_path=logs/.../last.ckpt data_dir=... logger=wandb   # also into the checkpoint's W&B run
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from magnet.entrypoints import (
    check_required,
    closing_loggers,
    instantiate_group,
    open_generator,
    pick_device,
    settings_of,
)
from magnet.errors import exit_on_user_error
from magnet.metrics import MetricSettings, evaluate, write_json
from magnet.metrics.stats import real_images
from magnet.models.resolve import checkpoint_reference
from magnet.nn.checkpoint import read_checkpoint
from magnet.resolvers import register_resolvers


def run_eval(cfg: DictConfig) -> Path:
    """Write metrics.json in cfg.output_dir, log the figures to the configured loggers; return the json's path."""
    check_required(cfg)
    with settings_of(cfg, "metrics"):
        settings = MetricSettings(**OmegaConf.to_container(cfg.metrics, resolve=True))
    loggers = instantiate_group(cfg.get("logger"), "logger")
    real_images(cfg.data_dir)  # a wrong folder fails before anything slow is loaded
    generator = open_generator(cfg.ckpt_path, pick_device(cfg.device))
    with closing_loggers(loggers):
        figures = evaluate(generator, cfg.data_dir, settings)
        if loggers:
            from magnet.training.wandb_logger import log_evaluation

            measured = {name: value for name, value in figures.items() if name.startswith(tuple(settings.names))}
            log_evaluation(loggers, measured, checkpoint_kimg(cfg.ckpt_path))
    return write_json({"ckpt_path": checkpoint_reference(cfg.ckpt_path), **figures},
                      Path(cfg.output_dir) / "metrics.json")


def checkpoint_kimg(ckpt_path) -> float | None:
    """The training time of one of our training checkpoints (None for other files)."""
    nimg = read_checkpoint(ckpt_path).get("state_dict", {}).get("nimg")
    return None if nimg is None else int(nimg) / 1000


register_resolvers()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(run_eval(cfg))


if __name__ == "__main__":
    main()
