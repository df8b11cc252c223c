"""Text to painting: search, optionally refine, auto-level and write every output of one prompt and seed."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from magnet.search.outputs import contact_sheet, save_png, write_gif, write_search_json
from magnet.search.postprocess import auto_levels
from magnet.search.prompts import ClipObjective, parse_prompt, prompt_label
from magnet.search.run import run_search
from magnet.search.space import LatentSpace


def slug(text: str, max_len: int = 60) -> str:
    """A folder name for a prompt: lowercase words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_len] or "prompt"


@torch.no_grad()
def render_latent(generator, space: str, truncation_psi: float, latent) -> torch.Tensor:
    """One latent (as stored in the PNG metadata) -> its (3, size, size) image in [-1, 1]."""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    return LatentSpace(generator, space, truncation_psi).render(latent[None])[0].cpu()


def paint(
    generator,
    clip,
    prompt,
    seed: int,
    out_dir,
    strategy,
    recipe: dict,
    image_prompts=(),
    space: str = "z",
    truncation_psi: float = 1.0,
    batch_size: int = 20,
    thumb_size: int = 128,
    refiner=None,
    discriminator=None,
    contact_sheets: bool = True,
    gif: bool = False,
    progress=None,
) -> Path:
    """Run the search for `prompt` with `seed`, write painting.png (+ sheets, search.json, GIF) into out_dir.

    `recipe` (checkpoint path, settings) goes into the PNG metadata, beside prompt, seed, score and the
    latent, so that the painting can be rendered again from the file alone. Returns the painting's path.
    """
    parsed = parse_prompt(prompt, image_prompts)
    objective = ClipObjective(clip, parsed)
    result = run_search(
        generator, objective, strategy, space, truncation_psi, seed, batch_size, thumb_size, progress
    )
    latent, final_space, score = result.best_latent, space, result.best_score
    refined = refiner is not None and refiner.steps > 0
    if refined:
        rng = torch.Generator().manual_seed(int(seed))
        latent = refiner.run(
            LatentSpace(generator, space, truncation_psi), objective, latent, rng, discriminator, progress
        )
        final_space = "w+"
    image = render_latent(generator, final_space, truncation_psi, latent)
    if refined:  # the search's score was for the unrefined latent
        with torch.no_grad():
            score = float(objective(image[None].to(next(generator.parameters()).device)))

    out_dir = Path(out_dir)  # save_png makes it: nothing is written for a painting it refuses
    label = prompt_label(parsed)
    metadata = {
        **recipe,
        "prompt": label,
        "seed": int(seed),
        "score": score,
        "space": final_space,
        "truncation_psi": truncation_psi,
        "latent": latent.tolist(),
    }
    path = save_png(out_dir / "painting.png", image, metadata)
    write_search_json(out_dir / "search.json", {**recipe, "prompt": label, "seed": int(seed)}, result)
    if contact_sheets:
        for g, generation in enumerate(result.generations):
            sheet = contact_sheet(generation.thumbnails, generation.scores, generation.num_parents)
            sheet.save(out_dir / f"generation_{g:02d}.png")
    if gif:  # the best painting after each generation
        best = [g.scores.argmax() for g in result.generations]
        frames = [auto_levels(g.thumbnails[b].float() / 127.5 - 1) for g, b in zip(result.generations, best)]
        captions = [f"gen {k} {float(g.scores[b]):+.4f}" for k, (g, b) in enumerate(zip(result.generations, best))]
        write_gif(out_dir / "search.gif", frames, captions)
    return path
