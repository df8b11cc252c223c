"""Export a checkpoint: python export.py ckpt_path=... format=rosinality|safetensors out=..."""

import hydra
from omegaconf import DictConfig

from magnet.errors import exit_on_user_error
from magnet.models.export import export_checkpoint


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(export_checkpoint(cfg.ckpt_path, cfg.format, cfg.out))


if __name__ == "__main__":
    main()
