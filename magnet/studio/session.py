"""One person's studio session: model, prompt, the generations made so far, the parents picked, undo.

Every page action is a method here, so Python (and the tests) can do anything the page does. Files go to
the session's own folder only, under names made from the person's words by `magnet.search.paint.slug`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from magnet.checks import check_float, check_int
from magnet.errors import MissingFileError, UserError
from magnet.image_files import READ_ERRORS, read_rgb
from magnet.models.resolve import checkpoint_reference
from magnet.search.breeding import MAX_CHOSEN, Breeding, next_generation
from magnet.search.evaluate import Evaluator
from magnet.search.outputs import contact_sheet, save_png
from magnet.search.paint import finish, painting_metadata, slug
from magnet.search.prompts import ClipObjective, parse_prompt, prompt_label
from magnet.search.refine import Refiner
from magnet.search.result import Generation
from magnet.search.run import search_generations
from magnet.search.space import LatentSpace, check_space
from magnet.search.strategies import build_strategy
from magnet.studio.models import local_reference

SESSION_FILE = "session.pt"
IMAGE_PROMPT = "image_prompt.png"


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
    strategies: dict = field(default_factory=dict)  # name -> settings (conf/search/strategy/*.yaml, no _target_)
    breeding: Breeding = field(default_factory=Breeding)
    max_upload_bytes: int = 20_000_000

    def __post_init__(self):
        check_space(self.space)
        check_float("truncation_psi", self.truncation_psi)
        check_int("batch_size", self.batch_size, at_least=1)
        check_int("thumb_size", self.thumb_size, at_least=8)
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
        dtype = str(next(generator.parameters()).dtype).removeprefix("torch.")
        return (f"model {self.model} ({generator.size} px) | CLIP {self.clip_key[0]}/{self.clip_key[1]} | "
                f"device {self.models.device} | precision {dtype}")

    def set_image_prompt(self, path) -> str:
        """Keep an uploaded image as this session's image prompt: size-limited, decoded under the pixel limit."""
        path = Path(path)
        if path.stat().st_size > self.settings.max_upload_bytes:
            raise UserError(f"{path.name} is {path.stat().st_size} bytes; the studio takes images up to "
                            f"{self.settings.max_upload_bytes} bytes")
        try:
            image = read_rgb(path)
        except READ_ERRORS as err:
            raise UserError(f"{path.name} cannot be read as an image ({err}); upload a JPEG, PNG or WebP") from err
        target = self.folder / IMAGE_PROMPT
        image.save(target)
        self.image_prompt = str(target)
        return self.image_prompt

    def objective(self, prompt: str, image_weight: float = 0.0) -> ClipObjective:
        """CLIP's score for `prompt` ("orange triangles | blue:0.5 | text:-1"), plus the image prompt if weighted."""
        images = [f"{self.image_prompt}:{image_weight}"] if self.image_prompt and image_weight else []
        return ClipObjective(self.models.clip(*self.clip_key), parse_prompt(prompt or "", images))

    # ------------------------------------------------------------------ making generations
    def _space(self, model: str, space: str, truncation_psi: float) -> LatentSpace:
        return LatentSpace(self.models.generator(model), space, truncation_psi)

    def _evaluator(self, space, objective) -> Evaluator:
        return Evaluator(space, objective, self.settings.batch_size, self.settings.thumb_size)

    def search(self, prompt: str, seed: int = 0, strategy: str = "genetic", generations: int | None = None,
               image_weight: float = 0.0) -> Iterator[Entry]:
        """Run a search and yield each generation as soon as it is scored; stopping keeps those done."""
        if strategy not in self.settings.strategies:
            raise UserError(f"unknown strategy {strategy!r}; known: {', '.join(self.settings.strategies)}")
        objective = self.objective(prompt, image_weight)
        options = dict(self.settings.strategies[strategy])
        if generations is not None and "generations" in options:  # random search has one round only
            options["generations"] = int(generations)
        searcher = build_strategy(strategy, **options)
        space = self._space(self.model, self.settings.space, self.settings.truncation_psi)
        label = prompt_label(objective.prompts)
        for g, generation in enumerate(search_generations(searcher, self._evaluator(space, objective), seed)):
            yield self._add(Entry(generation, f"{strategy} generation {g}", label, self.model, space.name,
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

    # ------------------------------------------------------------------ files
    def painting(self, index: int, truncation_psi: float | None = None, refine_steps: int = 0,
                 name: str = "painting") -> Path:
        """Write painting `index` of the current generation at full size, with the metadata that re-renders it.

        `truncation_psi` re-renders a z latent nearer the average image; `refine_steps` polishes it with Adam in
        W+ through CLIP (magnet.search.refine). The file is `<session>/paintings/<slug of name>.png`.
        """
        entry = self.entry
        generation = entry.generation
        if not 0 <= index < len(generation.scores):
            raise UserError(f"painting {index} is not in this generation of {len(generation.scores)}")
        psi = entry.truncation_psi if truncation_psi is None else float(truncation_psi)
        if psi != entry.truncation_psi and entry.space != "z":
            raise UserError(f"truncation applies to z latents; this generation was searched in {entry.space}")
        space = self._space(entry.model, entry.space, psi)
        objective = self.objective(entry.prompt)
        latent = generation.latents[index]
        score = float(generation.scores[index])
        if psi != entry.truncation_psi:  # the score found was for another image
            with torch.no_grad():
                score = float(objective(space.render_one(latent)[None].to(space.device)))
        space, latent, image, score = finish(space, objective, latent, score, Refiner(steps=int(refine_steps)),
                                             entry.seed)
        recipe = {"checkpoint": entry.model,
                  "settings": {"clip": {"model_name": self.clip_key[0], "pretrained": self.clip_key[1]},
                               "studio": {"generation": self.current, "index": int(index), "label": entry.label}}}
        folder = self.folder / "paintings"
        folder.mkdir(exist_ok=True)
        return save_png(inside(folder, name, ".png"),
                        image, painting_metadata(recipe, entry.prompt, entry.seed, score, space, latent))

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
        except Exception as err:  # any file that is not one: torch's reader and the fields fail in many ways
            raise UserError(f"{path.name} is not a studio session file ({err}); give one saved by the studio") from err
        for ref in {model, *(e.model for e in history)}:
            local_reference(ref)
        self.history, self.model, self.clip_key, self.current, self.chosen = history, model, clip_key, current, []
