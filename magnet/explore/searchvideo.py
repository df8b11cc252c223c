"""The video of a saved search (its search.json): the best painting so far after each generation, scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from magnet.checks import check_float, check_text
from magnet.errors import MissingFileError, UserError
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.grid import caption
from magnet.explore.paintings import read_recipe
from magnet.explore.render import check_frame_settings, synthesize, to_frame
from magnet.explore.video import check_video_settings, write_video
from magnet.search.recipes import check_fits
from magnet.search.space import LatentSpace


def search_record(path) -> tuple[Path, dict]:
    """(file, record) of a search.json, given it or the folder generate.py wrote it in."""
    path = Path(path)
    if path.is_dir():
        path = path / "search.json"
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; give a search.json or the folder generate.py wrote it in")
    record = read_recipe(path)
    settings = record.get("settings") if isinstance(record, dict) else None
    search = settings.get("search") if isinstance(settings, dict) else None
    generations = record.get("generations") if isinstance(record, dict) else None
    if not isinstance(search, dict) or not {"space", "truncation_psi"} <= search.keys() or not generations or \
            not all(isinstance(g, dict) and g.get("latents") and g.get("scores") for g in generations):
        raise UserError(f"{path} is not a search record written by generate.py (settings.search.space, "
                        "truncation_psi and generations with latents and scores)")
    return path, record


def best_so_far(record: dict) -> list[tuple[list, float]]:
    """(latent, score) of the best candidate up to each generation (the earliest on a tie)."""
    best, out = None, []
    for generation in record["generations"]:
        scores = generation["scores"]
        i = max(range(len(scores)), key=scores.__getitem__)
        if best is None or scores[i] > best[1]:
            best = (generation["latents"][i], float(scores[i]))
        out.append(best)
    return out


def search_frames(generator, record: dict, frames_per_generation: int = 12, size: int | None = None,
                  levels: bool = True, batch_size: int = 8, progress=None, where="the search"):
    """Frames of the best painting after each generation with 'generation k  score s' written on it."""
    search = record["settings"]["search"]
    best = best_so_far(record)
    check_fits(generator, {"space": search["space"], "latent": best[0][0], "checkpoint": record.get("checkpoint")},
               where)
    space = LatentSpace(generator, search["space"], search["truncation_psi"])
    with torch.no_grad():
        ws = space.to_ws(torch.tensor([latent for latent, _ in best], dtype=torch.float32)).cpu()
    for k, (image, (_, score)) in enumerate(zip(synthesize(generator, ws, batch_size, progress), best)):
        frame = caption(to_frame(image, size, levels), f"generation {k}  score {score:+.4f}")
        yield from [frame] * frames_per_generation


@dataclass
class SearchVideoSettings(Tool):
    """python explore.py explore=search explore.search=outputs/generate/.../seed_0"""

    search: str = "???"            # a search.json, or the folder of a painting that holds one
    fps: float = 12
    seconds_per_generation: float = 1.0
    size: int | None = None        # px; null: the generator's
    levels: bool = True            # auto-levels per frame, as painting.png
    format: str = "mp4"            # mp4 | gif
    batch_size: int = 8
    name: str = "search"

    def __post_init__(self):
        check_text("search", self.search)
        check_video_settings(self.fps, self.format)
        check_float("seconds_per_generation", self.seconds_per_generation, above=0, at_most=60)
        check_frame_settings(self.size, self.levels, self.batch_size)
        check_text("name", self.name)

    def inputs(self) -> list[Path]:
        return [search_record(self.search)[0]]

    def run(self, context: ExploreContext) -> Path:
        path, record = search_record(self.search)
        frames = search_frames(context.generator, record, max(1, round(self.fps * self.seconds_per_generation)),
                               self.size, self.levels, self.batch_size, context.progress_for("search"), path)
        return write_video(context.out_dir / self.name, frames, self.fps, self.format)
