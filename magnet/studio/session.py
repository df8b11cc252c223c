"""One person's studio session: model, prompt, the generations made so far, the parents picked, undo.

Every page action is a method here, so Python (and the tests) can do anything the page does. Files go to
the session's own folder only, under names made from the person's words by `magnet.search.paint.slug`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from magnet.checks import check_float, check_int, check_text
from magnet.errors import MissingFileError, UserError, config_key
from magnet.explore.context import ExploreContext
from magnet.explore.layers import check_ranges, layer_span
from magnet.explore.mixing import mix
from magnet.explore.paintings import render_recipe
from magnet.explore.perceptual import build_distance
from magnet.explore.projection import Projection, psnr, read_target
from magnet.explore.sefa import RANGES, cached_directions, edit_recipe
from magnet.explore.truncation import truncate
from magnet.explore.video import check_video_settings
from magnet.explore.walk import write_walk
from magnet.image_files import READ_ERRORS, read_rgb
from magnet.models.resolve import checkpoint_reference, checkpoint_sha256
from magnet.precision import check_precision, resolve
from magnet.search.breeding import MAX_CHOSEN, Breeding, next_generation
from magnet.search.evaluate import Evaluator, Screen
from magnet.search.outputs import contact_sheet, save_png
from magnet.search.paint import finish, painting_metadata, slug
from magnet.search.prompts import ClipObjective, parse_prompt, prompt_label
from magnet.search.recipes import recipe_ws
from magnet.search.refine import Refiner
from magnet.search.result import Generation
from magnet.search.run import search_generations
from magnet.search.space import LatentSpace, check_space
from magnet.search.start import start_latent
from magnet.search.strategies import build_strategy
from magnet.studio.models import local_reference

SESSION_FILE = "session.pt"
IMAGE_PROMPT = "image_prompt.png"


@dataclass
class ExploreSettings:
    """The chosen painting's panel: edit sliders, layer ranges for edits and mixing, walk videos."""

    directions: int = 5            # closed-form (SeFa) edit sliders, largest eigenvalue first
    amount: float = 5.0            # each slider's reach either way (the directions are unit vectors in W)
    ranges: dict = field(default_factory=lambda: dict(RANGES))  # named W+ layer ranges, [lowest px, highest px]
    cache_dir: str = "~/.cache/magnet/sefa"  # the directions, computed once per checkpoint file
    fps: float = 12                # walk videos
    seconds: float = 4.0

    def __post_init__(self):
        check_int("directions", self.directions, at_least=1, at_most=32)
        check_float("amount", self.amount, above=0)
        check_ranges("ranges", self.ranges)
        check_text("cache_dir", self.cache_dir)
        check_video_settings(self.fps, "mp4")
        check_float("seconds", self.seconds, above=0, at_most=600)


@dataclass
class StudioSettings:
    """What every session starts with (conf/studio.yaml)."""

    model: str = "magnet"                  # checkpoint reference of the first model
    clip_model: str = "ViT-B-32"
    clip_pretrained: str | None = "openai"
    space: str = "z"                       # z | w | w+
    truncation_psi: float = 1.0
    batch_size: int = 20
    thumb_size: int = 128
    precision: str = "fp32"                # of the candidates' renders and scores (magnet.precision)
    screen: Screen = field(default_factory=Screen)  # a search's initial population ranked on previews first
    strategies: dict = field(default_factory=dict)  # name -> settings (conf/search/strategy/*.yaml, no _target_)
    breeding: Breeding = field(default_factory=Breeding)
    refine: Refiner = field(default_factory=Refiner)  # its steps come from the page
    explore: ExploreSettings = field(default_factory=ExploreSettings)
    project: Projection = field(default_factory=lambda: Projection(steps=100, perceptual="inception", video=False))
    vary_spread: float = 0.5               # "vary this painting": std around it, in units of the space's spread
    max_upload_bytes: int = 20_000_000

    def __post_init__(self):
        check_space(self.space)
        check_float("truncation_psi", self.truncation_psi)
        check_int("batch_size", self.batch_size, at_least=1)
        check_int("thumb_size", self.thumb_size, at_least=8)
        check_precision("precision", self.precision)
        if isinstance(self.screen, dict):
            with config_key("screen"):
                self.screen = Screen(**self.screen)
        check_float("vary_spread", self.vary_spread, at_least=0)
        check_int("max_upload_bytes", self.max_upload_bytes, at_least=1)


@dataclass
class Entry:
    """A generation in the history, with what made it: label, prompt, model, latent space and seed."""

    generation: Generation
    label: str
    prompt: str
    model: str
    space: str
    truncation_psi: float
    seed: int


def truncated(space: LatentSpace, latent: torch.Tensor, psi: float) -> tuple[LatentSpace, torch.Tensor]:
    """A latent of `space` as (space, latent) at truncation `psi` (magnet.explore.truncate of its W+): a W
    latent when every layer shares one w (z, w), else W+; unchanged at the space's own psi."""
    if psi == space.truncation_psi:
        return space, latent
    with torch.no_grad():
        ws = truncate(space.generator, space.to_ws(latent[None])[0].float().cpu(), [psi], space.truncation_psi)[0]
    name = "w+" if space.name == "w+" else "w"
    return LatentSpace(space.generator, name, psi), (ws if name == "w+" else ws[0])


def inside(folder: Path, name: str, suffix: str) -> Path:
    """`folder/<slug of name><suffix>`: words from a person or a prompt never reach outside `folder`."""
    path = (folder / f"{slug(str(name))}{suffix}").resolve()
    if path.parent != folder.resolve():
        raise UserError(f"{name!r} cannot name a file of this session")
    return path


class StudioSession:
    """One browser session's state; `models` (SharedModels) is shared with the other sessions."""

    def __init__(self, models, folder, settings: StudioSettings):
        self.models = models
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.model = checkpoint_reference(settings.model)
        self.clip_key = (settings.clip_model, settings.clip_pretrained)
        self.history: list[Entry] = []
        self.current = -1            # index in history of the generation shown
        self.chosen: list[int] = []  # parents picked in the current generation
        self.image_prompt: str | None = None
        self.shown: dict | None = None     # recipe of the painting last painted, mixed or kept
        self.favourites: list[dict] = []   # recipes of the paintings kept
        self._rng = torch.Generator().manual_seed(0)

    # ------------------------------------------------------------------ models and prompt
    def set_model(self, ref: str) -> str:
        """Load the model for the next search; on failure the session keeps its model (the error says why)."""
        self.models.generator(ref)
        self.model = checkpoint_reference(ref)
        return self.model

    def set_clip(self, model_name: str, pretrained: str | None) -> None:
        self.models.clip(model_name, pretrained or None)
        self.clip_key = (model_name, pretrained or None)

    def describe(self) -> str:
        """Model, CLIP, device and precision, in one line for the page."""
        generator = self.models.generator(self.model)
        return (f"model {self.model} ({generator.size} px) | CLIP {self.clip_key[0]}/{self.clip_key[1]} | "
                f"device {self.models.device} | precision {self.precision} (paintings float32)")

    def set_image_prompt(self, path) -> str:
        """Keep an uploaded image as this session's image prompt: size-limited, decoded under the pixel limit."""
        target = self.folder / IMAGE_PROMPT
        self._upload(path).save(target)
        self.image_prompt = str(target)
        return self.image_prompt

    def _upload(self, path) -> Image.Image:
        """An uploaded image file, refused in words above the size limit or when it cannot be decoded (whose
        pixel limit is checked from its header)."""
        path = Path(path)
        if path.stat().st_size > self.settings.max_upload_bytes:
            raise UserError(f"{path.name} is {path.stat().st_size} bytes; the studio takes images up to "
                            f"{self.settings.max_upload_bytes} bytes")
        try:
            return read_rgb(path)
        except READ_ERRORS as err:
            raise UserError(f"{path.name} cannot be read as an image ({err}); upload a JPEG, PNG or WebP") from err

    def objective(self, prompt: str, image_weight: float = 0.0) -> ClipObjective:
        """CLIP's score for `prompt` ("orange triangles | blue:0.5 | text:-1"), plus the image prompt if weighted."""
        images = [f"{self.image_prompt}:{image_weight}"] if self.image_prompt and image_weight else []
        return ClipObjective(self.models.clip(*self.clip_key), parse_prompt(prompt or "", images))

    # ------------------------------------------------------------------ making generations
    def _space(self, model: str, space: str, truncation_psi: float) -> LatentSpace:
        return LatentSpace(self.models.generator(model), space, truncation_psi)

    def _evaluator(self, space, objective) -> Evaluator:
        return Evaluator(space, objective, self.settings.batch_size, self.settings.thumb_size,
                         precision=self.precision, screen=self.settings.screen)

    @property
    def precision(self) -> str:
        """The candidates' precision on this studio's device: fp32 or bf16."""
        return resolve(self.settings.precision, self.models.device)

    def search(self, prompt: str, seed: int = 0, strategy: str = "genetic", generations: int | None = None,
               image_weight: float = 0.0) -> Iterator[Entry]:
        """Run a search and yield each generation as soon as it is scored; stopping keeps those done."""
        space = self._space(self.model, self.settings.space, self.settings.truncation_psi)
        yield from self._search(space, self.model, prompt, seed, strategy, generations, image_weight)

    def vary(self, prompt: str, seed: int = 0, strategy: str = "genetic", generations: int | None = None,
             image_weight: float = 0.0, spread: float | None = None) -> Iterator[Entry]:
        """A search whose initial population is the painting shown (its painting 0) and paintings `spread`
        (default: the vary setting) around it, in the painting's own latent space."""
        shown = self._shown()
        spread = self.settings.vary_spread if spread is None else float(spread)
        check_float("spread", spread, at_least=0)
        name = "w+" if "edits" in shown else shown["space"]  # edits are offsets in W+
        space = self._space(shown["checkpoint"], name, shown["truncation_psi"])
        around = start_latent(shown, space, key="the painting shown")
        yield from self._search(space, shown["checkpoint"], prompt, seed, strategy, generations, image_weight,
                                around, spread, "around the painting, ")

    def _search(self, space, model, prompt, seed, strategy, generations, image_weight, around=None, spread=0.5,
                label="") -> Iterator[Entry]:
        if strategy not in self.settings.strategies:
            raise UserError(f"unknown strategy {strategy!r}; known: {', '.join(self.settings.strategies)}")
        objective = self.objective(prompt, image_weight)
        options = dict(self.settings.strategies[strategy])
        if generations is not None and "generations" in options:  # random search has one round only
            options["generations"] = int(generations)
        searcher = build_strategy(strategy, **options)
        words = prompt_label(objective.prompts)
        steps = search_generations(searcher, self._evaluator(space, objective), seed, around, spread)
        for g, generation in enumerate(steps):
            yield self._add(Entry(generation, f"{strategy} {label}generation {g}", words, model, space.name,
                                  space.truncation_psi, int(seed)))

    def pick(self, index: int) -> list[int]:
        """Toggle a painting of the current generation as a parent (at most MAX_CHOSEN)."""
        size = len(self.entry.generation.scores)
        if not 0 <= index < size:
            raise UserError(f"painting {index} is not in this generation of {size}")
        if index in self.chosen:
            self.chosen.remove(index)
        elif len(self.chosen) == MAX_CHOSEN:
            raise UserError(f"{MAX_CHOSEN} parents picked already; click one of them to drop it first")
        else:
            self.chosen.append(index)
        return self.chosen

    def breed(self, prompt: str, mutation_amount: float | None = None, clip_weight: float | None = None,
              image_weight: float = 0.0) -> Entry:
        """The next generation from the picked parents (and CLIP's best, by `clip_weight`), scored for `prompt`."""
        entry = self.entry
        settings = replace(self.settings.breeding, **{
            k: float(v) for k, v in (("mutation_amount", mutation_amount), ("clip_weight", clip_weight))
            if v is not None})
        objective = self.objective(prompt, image_weight)
        space = self._space(entry.model, entry.space, entry.truncation_psi)
        parents = ", ".join(str(i) for i in self.chosen) or "CLIP's best"
        generation = next_generation(entry.generation, self.chosen, settings, space,
                                     self._evaluator(space, objective), self._rng)
        return self._add(Entry(generation, f"bred from {parents} of {self.current}", prompt_label(objective.prompts),
                               entry.model, entry.space, entry.truncation_psi, entry.seed))

    def _add(self, entry: Entry) -> Entry:
        self.history.append(entry)
        self.current, self.chosen = len(self.history) - 1, []
        return entry

    @property
    def entry(self) -> Entry:
        if self.current < 0:
            raise UserError("no generation yet: type a prompt and run a search first")
        return self.history[self.current]

    def undo(self) -> None:
        """Forget the last generation made and show the one before it."""
        if not self.history:
            raise UserError("nothing to undo")
        self.history.pop()
        self.current, self.chosen = len(self.history) - 1, []

    def go_to(self, index: int) -> Entry:
        """Show an earlier generation again (breeding from it adds a new one at the end)."""
        if not 0 <= index < len(self.history):
            raise UserError(f"there is no generation {index}; this session has {len(self.history)}")
        self.current, self.chosen = index, []
        return self.entry

    # ------------------------------------------------------------------ the chosen painting
    def painting(self, index: int, truncation_psi: float | None = None, refine_steps: int = 0,
                 name: str = "painting", edits: Sequence[float] = (), layers: str | None = None) -> Path:
        """Write painting `index` of the current generation at full size, with the recipe that re-renders it.

        `truncation_psi` pulls its W towards the average w (any space); `refine_steps` polishes it with Adam in
        W+ through CLIP; `edits[k]` moves it along closed-form direction k on `layers` (a name of the explore
        ranges; None: all). The file is `<session>/paintings/<slug of name>.png`; it becomes the painting shown.
        """
        entry = self.entry
        generation = entry.generation
        if not 0 <= index < len(generation.scores):
            raise UserError(f"painting {index} is not in this generation of {len(generation.scores)}")
        edits = [float(amount) for amount in edits]
        generator = self.models.generator(entry.model)
        span = layer_span(generator, layers, self.settings.explore.ranges)
        directions = self.directions(entry.model) if any(edits) else None
        if directions is not None and len(edits) > len(directions):
            raise UserError(f"{len(edits)} edit amounts, but this model has {len(directions)} directions")
        psi = entry.truncation_psi if truncation_psi is None else float(truncation_psi)
        space, latent = truncated(self._space(entry.model, entry.space, entry.truncation_psi),
                                  generation.latents[index], psi)
        objective = self.objective(entry.prompt)
        space, latent, _, score = finish(space, objective, latent, float(generation.scores[index]),
                                         replace(self.settings.refine, steps=int(refine_steps)), entry.seed,
                                         exact=self.precision == "fp32")
        recipe = {"checkpoint": entry.model, "checkpoint_sha256": checkpoint_sha256(entry.model),
                  "settings": {"clip": {"model_name": self.clip_key[0], "pretrained": self.clip_key[1]},
                               "studio": {"generation": self.current, "index": int(index), "label": entry.label}}}
        metadata = painting_metadata(recipe, entry.prompt, entry.seed, score, space, latent)
        for k, amount in enumerate(edits):
            if amount:
                metadata = edit_recipe(metadata, directions, k, amount, span)
        changed = psi != entry.truncation_psi or any(edits)  # the score found was for another image
        return self._write(metadata, name, objective if changed else None)

    def directions(self, model: str) -> torch.Tensor:
        """The closed-form (SeFa) edit directions of a model, rows largest eigenvalue first (cached per file)."""
        return cached_directions(self.models.generator(model), model, self.settings.explore.cache_dir)[1]

    def keep(self) -> list[str]:
        """Keep the painting shown (with its truncation, edits or mixing) as a favourite; returns their names."""
        self.favourites.append(self._shown())
        return self.favourite_names()

    def favourite_names(self) -> list[str]:
        def name(k, recipe):
            made = [word for word, key in (("edited", "edits"), ("mixed", "mixed")) if key in recipe]
            return f"{k}: {recipe['prompt']} | {recipe['space']} psi {recipe['truncation_psi']:g} {' '.join(made)}"
        return [name(k, recipe).strip() for k, recipe in enumerate(self.favourites)]

    def mix(self, favourite: int, layers: str | None = "coarse", name: str = "mixed") -> Path:
        """The painting shown with the W+ `layers` (a name of the explore ranges; None: all) of a favourite's,
        written as a W+ painting (`<session>/paintings/<slug of name>.png`) that becomes the painting shown."""
        shown, other = self._shown(), self._favourite(favourite)
        generator = self._same_model([shown, other])
        first, last = layer_span(generator, layers, self.settings.explore.ranges)
        rows, columns = (recipe_ws(generator, recipe)[None].cpu() for recipe in (shown, other))
        recipe = {k: v for k, v in shown.items() if k not in ("edits", "score")}
        metadata = {**recipe, "space": "w+", "latent": mix(rows, columns, first, last)[0, 0].tolist(),
                    "mixed": {"with": other["prompt"], "favourite": int(favourite), "layers": [first, last]}}
        return self._write(metadata, name, self.objective(shown["prompt"]))

    def walk(self, favourites: Sequence[int] = (), seconds: float | None = None, fps: float | None = None,
             loop: bool = False, name: str = "walk", progress=None) -> Path:
        """A video (`<session>/videos/<slug of name>.mp4`) of round(fps * seconds) frames walking in W+ through
        the favourites given (all of them, in order, by default); `progress(done, total)` as frames render."""
        picked = [int(i) for i in favourites] or list(range(len(self.favourites)))
        recipes = [self._favourite(i) for i in picked]
        if len(recipes) < 2:
            raise UserError(f"a walk needs at least 2 favourites, {len(recipes)} given; keep more paintings first")
        seconds = self.settings.explore.seconds if seconds is None else float(seconds)
        fps = self.settings.explore.fps if fps is None else float(fps)
        check_float("seconds", seconds, above=0, at_most=600)
        check_video_settings(fps, "mp4")
        generator = self._same_model(recipes)
        keyframes = torch.stack([recipe_ws(generator, recipe).cpu() for recipe in recipes])
        folder = self.folder / "videos"
        folder.mkdir(exist_ok=True)
        return write_walk(generator, keyframes, inside(folder, name, ".mp4"), "w+", fps=fps, seconds=seconds,
                          loop=bool(loop), progress=progress)

    def project(self, path, steps: int | None = None, name: str = "projection", progress=None) -> Path:
        """Fit a latent of the session's model to an uploaded image (magnet.explore.projection, the project
        settings with `steps`), written as `<session>/paintings/<slug of name>.png`: the painting shown and a
        new favourite. `progress(done, total)` after each step; the target is kept beside it."""
        image = self._upload(path)
        settings = self.settings.project if steps is None else replace(self.settings.project, steps=int(steps))
        generator = self.models.generator(self.model)
        folder = self.folder / "paintings"
        folder.mkdir(exist_ok=True)
        target_path = inside(folder, f"{name}-target", ".png")
        image.save(target_path)
        target = read_target(target_path, generator.size)
        context = ExploreContext(generator, self.folder, self.model, self.models.device)
        found = settings.project(generator, target, build_distance(settings, context), progress)
        rendered = LatentSpace(generator, settings.space).render_one(found.latent)
        metadata = {**context.recipe(), "prompt": f"projection of {Path(path).name}", "seed": settings.seed,
                    "space": settings.space, "truncation_psi": 1.0, "latent": found.latent.tolist(),
                    "projection": {"psnr": psnr(rendered, target), "loss": found.losses[-1],
                                   "settings": {k: v for k, v in vars(settings).items() if k != "image"}}}
        written = self._write(metadata, name)
        self.favourites.append(self.shown)
        return written

    def _shown(self) -> dict:
        if self.shown is None:
            raise UserError("no painting shown yet: click a painting and press paint first")
        return self.shown

    def _favourite(self, index) -> dict:
        if index is None or not 0 <= int(index) < len(self.favourites):
            raise UserError(f"there is no favourite {index}; this session has {len(self.favourites)} "
                            "(keep a painting to add one)")
        return self.favourites[int(index)]

    def _same_model(self, recipes: list[dict]):
        models = list(dict.fromkeys(recipe["checkpoint"] for recipe in recipes))
        if len(models) > 1:
            raise UserError(f"these paintings come from different models ({', '.join(models)}); mix and walk "
                            "the paintings of one model")
        return self.models.generator(models[0])

    def _write(self, metadata: dict, name: str, objective: ClipObjective | None = None) -> Path:
        """Render a recipe as `generate.py from_png=` does, score it for its prompt when `objective` is given, and
        write it as `<session>/paintings/<slug of name>.png`, the painting shown from now on."""
        image = render_recipe(self.models.generator(metadata["checkpoint"]), metadata)
        if objective is not None:
            with torch.no_grad():
                metadata = {**metadata, "score": float(objective(image[None].to(self.models.device)))}
        folder = self.folder / "paintings"
        folder.mkdir(exist_ok=True)
        path = save_png(inside(folder, name, ".png"), image, metadata)
        self.shown = metadata
        return path

    # ------------------------------------------------------------------ files
    def contact_sheet(self) -> Path:
        """The current generation's contact sheet (parents on top), as `<session>/sheets/generation_XX.png`."""
        generation = self.entry.generation
        folder = self.folder / "sheets"
        folder.mkdir(exist_ok=True)
        path = inside(folder, f"generation-{self.current:02d}", ".png")
        contact_sheet(generation.thumbnails, generation.scores, generation.num_parents).save(path)
        return path

    def save(self, name: str = "session") -> Path:
        """Everything needed to go on later (history, current generation, model, CLIP) as one file of tensors."""
        state = {"model": self.model, "clip": list(self.clip_key), "current": self.current,
                 "shown": self.shown, "favourites": self.favourites,
                 "history": [{**vars(e), "generation": vars(e.generation).copy()} for e in self.history]}
        folder = self.folder / "saved"
        folder.mkdir(exist_ok=True)
        path = inside(folder, name, ".pt")
        torch.save(state, path)
        return path

    def open(self, path) -> None:
        """Go on with a session saved by `save` (read with weights_only: no code in it runs)."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path} does not exist; give a session .pt file saved by the studio")
        if os.path.getsize(path) > self.settings.max_upload_bytes:
            raise UserError(f"{path.name} is too large for a studio session ({os.path.getsize(path)} bytes)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            history = [Entry(**{**e, "generation": Generation(**e["generation"])}) for e in state["history"]]
            model, clip_key, current = state["model"], tuple(state["clip"]), int(state["current"])
            shown, favourites = state["shown"], list(state["favourites"])
        except Exception as err:  # any file that is not one: torch's reader and the fields fail in many ways
            raise UserError(f"{path.name} is not a studio session file ({err}); give one saved by the studio") from err
        recipes = [*favourites, *([shown] if shown else [])]
        for ref in {model, *(e.model for e in history), *(recipe["checkpoint"] for recipe in recipes)}:
            local_reference(ref)
        self.history, self.model, self.clip_key, self.current, self.chosen = history, model, clip_key, current, []
        self.shown, self.favourites = shown, favourites
