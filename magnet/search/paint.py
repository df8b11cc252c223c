"""Text to painting: search, optionally refine, auto-level and write every output of one prompt and seed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from magnet.checks import check_bool, check_file, check_float, check_int
from magnet.errors import config_key
from magnet.precision import check_precision, resolve
from magnet.search.evaluate import Screen
from magnet.search.outputs import contact_sheet, save_png, write_gif, write_search_json
from magnet.search.postprocess import auto_levels
from magnet.search.prompts import prompt_label
from magnet.search.refine import Refiner
from magnet.search.run import run_search
from magnet.search.space import LatentSpace, check_space
from magnet.search.start import read_start, start_latent


def slug(text: str, max_len: int = 60) -> str:
    """A folder name for a prompt: lowercase words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_len] or "prompt"


@dataclass
class PaintSettings:
    """How one painting is searched and written (generate.py's `search`, `refine` and `output` settings)."""

    space: str = "z"               # z (kept at norm sqrt(dim)) | w | w+
    truncation_psi: float = 1.0    # 1: no truncation (MAGnet)
    batch_size: int = 20           # renders scored at a time
    thumb_size: int = 128          # px of the contact-sheet thumbnails
    precision: str = "fp32"        # of the candidates' renders and scores: fp32 | bf16 | auto (magnet.precision)
    screen: Screen = field(default_factory=Screen)  # the initial population ranked on previews first
    refine: Refiner = field(default_factory=Refiner)
    contact_sheets: bool = True    # generation_XX.png: parents on top, children below
    gif: bool = False              # search.gif: the best image after each generation
    init_from: str | None = None   # a painting.png: the initial population is its latent and samples around it
    init_spread: float = 0.5       # std of those samples, in units of the space's spread

    def __post_init__(self):
        check_space(self.space)
        check_float("truncation_psi", self.truncation_psi)
        check_int("batch_size", self.batch_size, at_least=1)
        check_int("thumb_size", self.thumb_size, at_least=8)  # px
        check_precision("precision", self.precision)
        check_bool("contact_sheets", self.contact_sheets)
        check_bool("gif", self.gif)
        check_file("init_from", self.init_from, optional=True, what="painting.png")
        check_float("init_spread", self.init_spread, at_least=0)
        if isinstance(self.refine, dict):
            with config_key("refine"):
                self.refine = Refiner(**self.refine)
        if isinstance(self.screen, dict):
            with config_key("screen"):
                self.screen = Screen(**self.screen)


def finish(space, objective, latent, score: float, refiner: Refiner, seed: int, discriminator=None, progress=None,
           exact: bool = True):
    """A found latent as a painting: refined in W+ when `refiner.steps` > 0 -> (space, latent, image, score).

    The image is full size in float32; `exact`: `score` is already its score (a float32 search).
    """
    if refiner.steps > 0:
        rng = torch.Generator().manual_seed(int(seed))
        latent = refiner.run(space, objective, latent, rng, discriminator, progress)
        space = LatentSpace(space.generator, "w+", space.truncation_psi)  # refinement moves in W+
    image = space.render_one(latent)
    if refiner.steps > 0 or not exact:  # the search's score was for the unrefined latent or another render
        with torch.no_grad():
            score = float(objective(image[None].to(space.device)))
    return space, latent, image, score


def painting_metadata(recipe: dict, prompt: str, seed: int, score: float, space, latent) -> dict:
    """What a painting.png carries so that `generate.py from_png=` renders it again from the file alone."""
    return {**recipe, "prompt": prompt, "seed": int(seed), "score": float(score), "space": space.name,
            "truncation_psi": space.truncation_psi, "latent": torch.as_tensor(latent).tolist()}


def paint(generator, objective, seed: int, out_dir, strategy, settings: PaintSettings, recipe: dict,
          discriminator=None, progress=None) -> Path:
    """Search for `objective` (a ClipObjective) with `seed`; write painting.png (+ sheets, search.json, GIF).

    `recipe` (checkpoint path, settings) goes into the PNG metadata, beside prompt, seed, score and the
    latent, so that the painting can be rendered again from the file alone. Returns the painting's path.
    The painting and its score are always full size in float32, whatever the search's precision.
    """
    space = LatentSpace(generator, settings.space, settings.truncation_psi)
    precision = resolve(settings.precision, space.device)
    around = None
    if settings.init_from is not None:
        around = start_latent(read_start(settings.init_from, space.name, recipe), space)
    result = run_search(strategy, space, objective, seed, settings.batch_size, settings.thumb_size, progress,
                        precision=precision, screen=settings.screen, around=around, spread=settings.init_spread)
    space, latent, image, score = finish(space, objective, result.best_latent, result.best_score, settings.refine,
                                         seed, discriminator, progress, exact=precision == "fp32")
    out_dir = Path(out_dir)  # save_png makes it: nothing is written for a painting it refuses
    label = prompt_label(objective.prompts)
    path = save_png(out_dir / "painting.png", image, painting_metadata(recipe, label, seed, score, space, latent))
    write_search_json(out_dir / "search.json", {**recipe, "prompt": label, "seed": int(seed), "precision": precision},
                      result)
    if settings.contact_sheets:
        for g, generation in enumerate(result.generations):
            sheet = contact_sheet(generation.thumbnails, generation.scores, generation.num_parents)
            sheet.save(out_dir / f"generation_{g:02d}.png")
    if settings.gif:  # the best painting after each generation
        best = [g.scores.argmax() for g in result.generations]
        frames = [auto_levels(g.thumbnails[b].float() / 127.5 - 1) for g, b in zip(result.generations, best)]
        captions = [f"gen {k} {float(g.scores[b]):+.4f}" for k, (g, b) in enumerate(zip(result.generations, best))]
        write_gif(out_dir / "search.gif", frames, captions)
    return path
