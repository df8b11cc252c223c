"""Hydra entry point of the data pipeline: `python -m data_modules.prepare stage=scrape|crop|filter|all`."""

from __future__ import annotations

import inspect
import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from magnet.checks import check_choice, check_device
from magnet.errors import config_key, exit_on_user_error
from magnet.resolvers import register_resolvers

log = logging.getLogger(__name__)

STAGES = ("scrape", "crop", "filter")


def check_stages(cfg: DictConfig, stages: tuple[str, ...]) -> None:
    """Every chosen stage's settings, before the first stage runs (a bad filter setting must not wait for
    a day of scraping)."""
    from data_modules.crop import check_crop_settings
    from data_modules.scrape.scraper import check_scrape_settings

    checks = {"scrape": check_scrape_settings, "crop": check_crop_settings}
    if "filter" in stages:
        from data_modules.clip_filter import check_filter_settings
        from magnet.clip import check_clip

        checks["filter"] = check_filter_settings
        with config_key("clip"):
            check_clip(cfg.clip.model_name, cfg.clip.pretrained)
        check_device("device", cfg.device)
    for stage in stages:
        settings = OmegaConf.to_container(cfg[stage], resolve=True)
        accepted = inspect.signature(checks[stage]).parameters  # the paths are checked when the stage runs
        with config_key(stage):
            checks[stage](**{name: value for name, value in settings.items() if name in accepted})


def prepare(cfg: DictConfig) -> None:
    """Run the chosen stage, or all three in order; each prints what it did and where it wrote."""
    check_choice("stage", cfg.stage, (*STAGES, "all"))
    stages = STAGES if cfg.stage == "all" else (cfg.stage,)
    check_stages(cfg, stages)
    if "scrape" in stages:
        from data_modules.scrape import scrape

        summary = scrape(**OmegaConf.to_container(cfg.scrape, resolve=True))
        print(f"scrape: {summary.line()}")
        print(f"scrape: wrote {cfg.scrape.out_dir}/images and {cfg.scrape.out_dir}/manifest.csv")
    if "crop" in stages:
        from data_modules.crop import crop_folder

        summary = crop_folder(**OmegaConf.to_container(cfg.crop, resolve=True))
        print(f"crop: {summary.line()}")
        print(f"crop: wrote {cfg.crop.out_dir}")
    if "filter" in stages:
        from data_modules.clip_filter import filter_crops
        from magnet.clip import load_clip

        clip = load_clip(cfg.clip.model_name, cfg.clip.pretrained, device=cfg.device)
        summary = filter_crops(clip=clip, **OmegaConf.to_container(cfg.filter, resolve=True))
        print(f"filter: {summary.line()}")
        print(f"filter: kept crops in {cfg.filter.crops_dir}, rejected in {cfg.filter.rejected_dir}, "
              f"scores in {cfg.filter.scores_csv}")


register_resolvers()  # before @hydra.main composes the config


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
