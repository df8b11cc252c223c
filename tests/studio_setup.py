"""What the studio's tests share: a tiny generator checkpoint and the config overrides of a tiny studio."""

from pathlib import Path

import torch

from magnet import build_generator

ROOT = Path(__file__).resolve().parents[1]
CLIP_MODEL = "ViT-S-32-alt"  # the smallest open_clip ViT; random weights (pretrained=None) offline


def tiny_checkpoint(folder: Path) -> Path:
    """A 32 px SWAGAN generator with random weights, as a rosinality-layout checkpoint."""
    torch.manual_seed(0)
    g = build_generator("swagan", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)
    path = folder / "tiny.pt"
    torch.save({"g_ema": g.state_dict()}, path)
    return path


def studio_overrides(ckpt: Path, out: Path) -> list[str]:
    """A studio on the tiny generator and a random small CLIP: 8 initial paintings, 2 parents, 6 children."""
    return [
        f"ckpt_path={ckpt}",
        f"output_dir={out}",
        f"runs_dir={out / 'runs'}",
        f"clip.model_name={CLIP_MODEL}",
        "clip.pretrained=null",
        "strategies.genetic.num_initial_samples=8",
        "strategies.genetic.num_parents=2",
        "strategies.genetic.generations=1",
        "search.batch_size=8",
        "search.thumb_size=32",
        "breeding.children=6",
    ]


def compose_studio(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("studio", overrides=overrides)
