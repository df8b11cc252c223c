"""Evaluate a generator checkpoint against a folder of images: metrics by name written to JSON.

python eval.py ckpt_path=magnet data_dir=data/modern metrics.names=[fid50k_full,kid50k_full]
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from magnet.entrypoints import check_required, open_generator, pick_device, settings_of
from magnet.errors import exit_on_user_error
from magnet.metrics import MetricSettings, evaluate, write_json
from magnet.metrics.stats import real_images
from magnet.models.resolve import checkpoint_reference
from magnet.resolvers import register_resolvers


def run_eval(cfg: DictConfig) -> Path:
    """Write metrics.json in cfg.output_dir and return its path."""
    check_required(cfg)
    with settings_of(cfg, "metrics"):
        settings = MetricSettings(**OmegaConf.to_container(cfg.metrics, resolve=True))
    real_images(cfg.data_dir)  # a wrong folder fails before anything slow is loaded
    generator = open_generator(cfg.ckpt_path, pick_device(cfg.device))
    figures = evaluate(generator, cfg.data_dir, settings)
    return write_json({"ckpt_path": checkpoint_reference(cfg.ckpt_path), **figures},
                      Path(cfg.output_dir) / "metrics.json")


register_resolvers()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(run_eval(cfg))


if __name__ == "__main__":
    main()
