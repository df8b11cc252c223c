"""Evaluate a generator checkpoint against a folder of images: FID (+ KID, CLIP FD) written to JSON.

python eval.py ckpt_path=MAGnet_250.pt data_dir=data/modern num_gen=10000
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from magnet.entrypoints import open_generator, pick_device
from magnet.errors import exit_on_user_error
from magnet.metrics import InceptionFeatures, evaluate, write_json
from magnet.metrics.stats import list_images


def run_eval(cfg: DictConfig) -> Path:
    """Write metrics.json in cfg.output_dir and return its path."""
    list_images(cfg.data_dir)  # a wrong folder fails before anything slow is loaded
    device = pick_device(cfg.device)
    generator = open_generator(cfg.ckpt_path, device)
    inception = InceptionFeatures(cfg.feature_extractor_weights_path).to(device)
    clip = None
    if cfg.clip_fd:
        from magnet.metrics.clip_fd import clip_features

        clip = clip_features(cfg.clip.model_name, cfg.clip.pretrained, device)
    figures = evaluate(
        generator, cfg.data_dir, inception, num_gen=cfg.num_gen, size=cfg.size, clip=clip, kid=cfg.kid,
        kid_subsets=cfg.kid_subsets, kid_subset_size=cfg.kid_subset_size, batch_size=cfg.batch_size,
        truncation_psi=cfg.truncation_psi, noise_mode=cfg.noise_mode, seed=cfg.seed,
        cache_dir=cfg.cache_dir, num_workers=cfg.num_workers,
    )
    return write_json({"ckpt_path": str(Path(cfg.ckpt_path).resolve()), **figures},
                      Path(cfg.output_dir) / "metrics.json")


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(run_eval(cfg))


if __name__ == "__main__":
    main()
