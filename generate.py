"""Text to painting: load a generator and CLIP, run the CLIP-guided search for each prompt and seed.

python generate.py prompt="orange triangles | blue:0.5"    # MAGnet's published generator, downloaded once
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from magnet import load_discriminator
from magnet.checks import check_int
from magnet.clip import check_clip, load_clip
from magnet.entrypoints import instantiate, open_generator, pick_device, with_source
from magnet.errors import ConfigError, config_key, exit_on_user_error
from magnet.explore.paintings import choose_checkpoint, read_painting, render_recipe
from magnet.models.resolve import checkpoint_reference, checkpoint_sha256
from magnet.resolvers import register_resolvers
from magnet.search import ClipObjective, PaintSettings, paint, parse_prompt
from magnet.search.evaluate import make_progress
from magnet.search.outputs import save_png
from magnet.search.paint import slug
from magnet.search.prompts import collect_prompts, prompt_label
from magnet.search.run import check_screen
from magnet.search.start import read_start


def regenerate(cfg: DictConfig) -> Path:
    """Render a painting again from the recipe in its PNG metadata: latent, edits and checkpoint."""
    painting = read_painting(cfg.from_png)
    ckpt_path = choose_checkpoint(cfg.ckpt_path, [painting.path], None)
    generator = open_generator(ckpt_path, pick_device(cfg.device))
    image = render_recipe(generator, painting.metadata, painting.path)
    return save_png(Path(cfg.output_dir) / "painting.png", image, painting.metadata)


def paint_settings(cfg: DictConfig) -> PaintSettings:
    """The search, refine and output settings of the config as one checked object."""
    groups = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in ("search", "output")}
    del groups["search"]["strategy"]
    try:
        return PaintSettings(**groups["search"], **groups["output"],
                             refine=OmegaConf.to_container(cfg.refine, resolve=True))
    except ConfigError as err:  # named by its field: put the group it comes from in front
        group = next((name for name, settings in groups.items() if err.key.split(".")[0] in settings), None)
        if group is None:
            raise
        raise with_source(err.under(group), cfg) from err


def generate(cfg: DictConfig) -> list[Path]:
    """Write painting.png (+ contact sheets, search.json) per prompt and seed; returns their paths."""
    if cfg.from_png:
        return [regenerate(cfg)]
    # Everything the config says is checked before the generator and CLIP are loaded.
    prompts = [parse_prompt(prompt, cfg.image_prompts) for prompt in collect_prompts(cfg.prompt, cfg.prompts)]
    check_int("n_images", cfg.n_images, at_least=1)
    check_int("seed", cfg.seed, at_least=0)
    strategy = instantiate(cfg.search.strategy, "search.strategy")
    settings = paint_settings(cfg)
    check_screen(settings.screen, strategy)
    with config_key("clip"):
        check_clip(cfg.clip.model_name, cfg.clip.pretrained)
    device = pick_device(cfg.device)
    ckpt_path = cfg.ckpt_path or cfg.default_ckpt
    if settings.init_from is not None:  # the painting's checkpoint, unless ckpt_path names it (or another: refused)
        read_start(settings.init_from, settings.space)
        ckpt_path = choose_checkpoint(cfg.ckpt_path, [settings.init_from], cfg.default_ckpt)
    generator = open_generator(ckpt_path, device)
    discriminator = (
        load_discriminator(ckpt_path, device=device).eval() if settings.refine.realism_weight else None
    )
    torch.manual_seed(0)  # so that a CLIP with random weights (pretrained=null, tests) is always the same one
    clip = load_clip(cfg.clip.model_name, cfg.clip.pretrained, device=device)
    config = OmegaConf.to_container(cfg, resolve=False)
    recipe = {
        "checkpoint": checkpoint_reference(ckpt_path),
        "checkpoint_sha256": checkpoint_sha256(ckpt_path),
        "settings": {k: config[k] for k in ("clip", "inference", "search", "refine", "image_prompts")},
    }
    paths = []
    with make_progress() as progress:
        for i, prompt in enumerate(prompts):
            objective = ClipObjective(clip, prompt)
            label = prompt_label(prompt)
            for seed in range(cfg.seed, cfg.seed + cfg.n_images):
                out_dir = Path(cfg.output_dir) / f"{i:02d}_{slug(label)}" / f"seed_{seed}"
                progress.console.print(f"[bold]{label}[/bold] seed {seed}")
                path = paint(generator, objective, seed, out_dir, strategy, settings, recipe, discriminator,
                             progress)
                progress.console.print(f"wrote {path}")
                paths.append(path)
    return paths


register_resolvers()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="generate", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    paths = generate(cfg)
    print("\n".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
