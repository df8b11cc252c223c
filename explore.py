"""Explore a generator: walks, the video of a search, style mixing, truncation sweeps, SeFa directions and edits.

python explore.py explore=walk explore.seeds=[1,2,3]      # one tool per run: conf/explore/<tool>.yaml
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from magnet.entrypoints import check_required, instantiate, open_generator, pick_device
from magnet.errors import config_key, exit_on_user_error
from magnet.explore import ExploreContext, choose_checkpoint, rich_progress
from magnet.resolvers import register_resolvers


def explore(cfg: DictConfig) -> Path:
    """Run the tool of `cfg.explore` on the generator of `ckpt_path` (or of the paintings it reads)."""
    check_required(cfg)
    tool = instantiate(cfg.explore, "explore")  # every setting checked before the generator is loaded
    device = pick_device(cfg.device)
    ckpt_path = choose_checkpoint(cfg.ckpt_path, tool.inputs(), cfg.default_ckpt)
    generator = open_generator(ckpt_path, device)
    with rich_progress() as progress, config_key("explore"):  # settings checked against the generator
        return tool.run(ExploreContext(generator, Path(cfg.output_dir), ckpt_path, device, progress))


register_resolvers()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="explore", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(explore(cfg))


if __name__ == "__main__":
    main()
