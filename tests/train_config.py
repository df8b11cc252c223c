"""Compose the real training config, shrunk to seconds on a CPU: tiny networks, 32 px, a few batches."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"

TINY = [
    "data=folder", "data.size=32", "data.batch_size=4", "data.num_workers=0",
    "model.network.style_dim=16", "model.network.n_mlp=2", "model.network.channel_multiplier=1",
    "model.network.channel_max=16", "model.d_reg_every=2", "model.g_reg_every=2",
    "logger=csv", "extras.print_config=false", "~callbacks.progress_bar", "trainer.log_every_n_steps=1",
    "callbacks.samples.every_kimg=0.008", "callbacks.kimg_checkpoint.every_kimg=0.016",
]


def compose_train(output_dir: Path, image_dir: Path, *overrides: str):
    """The train config as `python train.py <overrides>` would see it, writing to `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True,
                      overrides=[*TINY, f"data.image_dir={image_dir}", *overrides])
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir.parent)
        del cfg.hydra  # as under @hydra.main, which hands the task its config without the hydra node
    return cfg
