"""Text to painting: load a generator and CLIP, run the CLIP-guided search for each prompt and seed.

python generate.py ckpt_path=MAGnet_250.pt prompt="orange triangles | blue:0.5"
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from magnet import load_discriminator
from magnet.clip import load_clip
from magnet.entrypoints import open_generator, pick_device
from magnet.errors import exit_on_user_error
from magnet.search import Refiner, build_strategy, paint, parse_prompt, read_png_metadata, render_latent
from magnet.search.evaluate import make_progress
from magnet.search.outputs import save_png
from magnet.search.paint import slug
from magnet.search.prompts import collect_prompts


def regenerate(cfg: DictConfig) -> Path:
    """Render a painting again from the latent and checkpoint stored in its PNG metadata."""
    metadata = read_png_metadata(cfg.from_png)
    generator = open_generator(cfg.ckpt_path or metadata["checkpoint"], pick_device(cfg.device))
    image = render_latent(generator, metadata["space"], metadata["truncation_psi"], metadata["latent"])
    return save_png(Path(cfg.output_dir) / "painting.png", image, metadata)


def generate(cfg: DictConfig) -> list[Path]:
    """Write painting.png (+ contact sheets, search.json) per prompt and seed; returns their paths."""
    if cfg.from_png:
        return [regenerate(cfg)]
    prompts = collect_prompts(cfg.prompt, cfg.prompts)
    for prompt in prompts:  # fail on a bad prompt before anything slow is loaded
        parse_prompt(prompt, cfg.image_prompts)
    strategy = build_strategy(cfg.search.strategy, **cfg.get(cfg.search.strategy, {}))
    refiner = Refiner(**cfg.refine)
    device = pick_device(cfg.device)
    generator = open_generator(cfg.ckpt_path, device)
    discriminator = (
        load_discriminator(cfg.ckpt_path, device=device).eval() if refiner.realism_weight else None
    )
    torch.manual_seed(0)  # so that a CLIP with random weights (pretrained=null, tests) is always the same one
    clip = load_clip(cfg.clip.model_name, cfg.clip.pretrained, device=device)
    settings = OmegaConf.to_container(cfg, resolve=False)
    recipe = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "settings": {
            k: settings[k] for k in ("clip", "search", cfg.search.strategy, "refine", "image_prompts")
        },
    }
    paths = []
    with make_progress() as progress:
        for i, prompt in enumerate(prompts):
            for seed in range(cfg.seed, cfg.seed + cfg.n_images):
                label = prompt if isinstance(prompt, str) else " | ".join(prompt)
                out_dir = Path(cfg.output_dir) / f"{i:02d}_{slug(label)}" / f"seed_{seed}"
                progress.console.print(f"[bold]{label}[/bold] seed {seed}")
                path = paint(
                    generator,
                    clip,
                    prompt,
                    seed,
                    out_dir,
                    strategy,
                    recipe,
                    image_prompts=cfg.image_prompts,
                    space=cfg.search.space,
                    truncation_psi=cfg.search.truncation_psi,
                    batch_size=cfg.search.batch_size,
                    thumb_size=cfg.search.thumb_size,
                    refiner=refiner,
                    discriminator=discriminator,
                    contact_sheets=cfg.output.contact_sheets,
                    gif=cfg.output.gif,
                    progress=progress,
                )
                progress.console.print(f"wrote {path}")
                paths.append(path)
    return paths


@hydra.main(config_path="conf", config_name="generate", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    paths = generate(cfg)
    print("\n".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
