"""Train a GAN: python train.py experiment=swagan512   (make run: the small CPU experiment on the Met paintings)."""

import logging
import math
import traceback
import warnings

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from magnet.checks import check_int
from magnet.entrypoints import (
    apply_extras,
    check_required,
    closing_loggers,
    instantiate,
    instantiate_group,
    settings_of,
)
from magnet.errors import exit_on_user_error
from magnet.nn.checkpoint import check_resume_checkpoint
from magnet.resolvers import register_resolvers

log = logging.getLogger(__name__)
# The EMA generator is in eval mode on purpose; Lightning warns about any module that is.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
register_resolvers()  # before @hydra.main composes the config


def train(cfg: DictConfig) -> float | None:
    """Build data, callbacks, loggers, trainer and model from the config, fit; return the swept metric.

    The cheap objects come first and the model (its networks) last, so that every constructor has refused
    a bad setting before anything slow runs (networks, crops, data loading).
    """
    check_required(cfg)
    check_int("seed", cfg.seed, at_least=0, at_most=2**32 - 1)  # Lightning silently replaces others by 0
    datamodule = instantiate(cfg.data, "data")
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer = instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    with settings_of(cfg, "model.network"):
        check_resume_checkpoint(cfg.get("ckpt_path"), cfg.model.network)
    pl.seed_everything(cfg.seed, workers=True)
    model = instantiate(cfg.model, "model")
    with closing_loggers(loggers):
        for logger in trainer.loggers:  # the trainer's: none under debug=fdr (fast_dev_run)
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    print(f"Run folder: {trainer.default_root_dir}")
    metric = cfg.get("optimized_metric")
    return float(trainer.callback_metrics[metric]) if metric and metric in trainer.callback_metrics else None


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    apply_extras(cfg)
    try:
        return train(cfg)
    except Exception:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        # In a sweep one failed job must not end the others: record it and give the sweeper a bad score.
        log.error("job failed:\n%s", traceback.format_exc())
        return math.inf


if __name__ == "__main__":
    main()
