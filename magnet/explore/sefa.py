"""Closed-form edit directions (SeFa, Shen & Zhou 2021, as rosinality's closed_form_factorization.py): the
eigenvectors of A^T A, A the style-modulation weights of every synthesis convolution stacked (ToRGB left out),
largest eigenvalue first. Moving w along one changes the styles most per unit of w. Cached per checkpoint file.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from magnet.atomic import atomic_path
from magnet.checks import check_choice, check_file, check_float, check_int, check_text
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.grid import GridLayout, caption, labelled_grid
from magnet.explore.layers import check_layers, check_ranges, describe_span, layer_span
from magnet.explore.paintings import read_painting, render_recipe
from magnet.explore.render import check_frame_settings, check_source, painting_paths, source_ws, synthesize, to_frame
from magnet.explore.video import check_video_settings, write_video
from magnet.models.resolve import checkpoint_sha256
from magnet.search.outputs import save_png

CACHE_VERSION = 1  # bumped when the directions of a checkpoint would come out otherwise
RANGES = {"coarse": [4, 8], "middle": [16, 32], "fine": [64, 1024]}


def modulation_weights(generator) -> torch.Tensor:
    """(sum of input channels, style_dim): the modulation weights of conv1 and every synthesis conv, stacked."""
    layers = [generator.conv1, *generator.convs]
    return torch.cat([layer.conv.modulation.weight.detach().float().cpu() for layer in layers])


def closed_form_directions(generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues (D,), directions (D, D)): unit eigenvectors of A^T A as rows, largest eigenvalue first; the
    sign of each is fixed so that its largest component is positive."""
    a = modulation_weights(generator).double()
    eigenvalues, vectors = torch.linalg.eigh(a.T @ a)
    eigenvalues, directions = eigenvalues.flip(0), vectors.T.flip(0)
    peaks = directions.gather(1, directions.abs().argmax(1, keepdim=True))
    return eigenvalues.float(), (directions * peaks.sign()).float()


def cached_directions(generator, ckpt_path, cache_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """`closed_form_directions` of a checkpoint's generator, computed once per file (by its SHA-256)."""
    path = Path(cache_dir).expanduser() / f"sefa-v{CACHE_VERSION}-{checkpoint_sha256(ckpt_path)[:24]}.pt"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["directions"].shape == (generator.style_dim, generator.style_dim):
            return saved["eigenvalues"], saved["directions"]
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, AttributeError, pickle.UnpicklingError):
        pass  # none yet, or a broken one (a killed writer of another version): computed again below
    eigenvalues, directions = closed_form_directions(generator)
    with atomic_path(path) as tmp:
        torch.save({"eigenvalues": eigenvalues, "directions": directions}, tmp)
    return eigenvalues, directions


def check_direction(key: str, index, directions: torch.Tensor) -> None:
    check_int(key, index, at_least=0, at_most=len(directions) - 1)


def move(ws: torch.Tensor, direction: torch.Tensor, amounts, first: int, last: int) -> torch.Tensor:
    """W+ (A, n_latent, D): `ws` moved by each amount along `direction` on layers first..last."""
    amounts = torch.as_tensor(amounts, dtype=ws.dtype, device=ws.device).view(-1, 1)
    moved = ws[None].repeat(len(amounts), 1, 1)
    moved[:, first : last + 1] += amounts[:, :, None] * direction.to(ws)[None, None]
    return moved


def sefa_grid(generator, ws: torch.Tensor, directions: torch.Tensor, eigenvalues: torch.Tensor, top_k: int = 5,
              amount: float = 3.0, steps: int = 7, span: tuple[int, int] | None = None, size: int | None = None,
              levels: bool = False, batch_size: int = 8, progress=None) -> tuple[Image.Image, GridLayout]:
    """Row k: `ws` moved along direction k by `steps` amounts from -amount to +amount (the middle one: 0)."""
    check_int("top_k", top_k, at_least=1, at_most=len(directions))
    first, last = span or (0, generator.n_latent - 1)
    amounts = np.linspace(-amount, amount, steps).tolist()
    moved = torch.cat([move(ws.cpu(), directions[k], amounts, first, last) for k in range(top_k)])
    frames = [to_frame(image, size, levels) for image in synthesize(generator, moved, batch_size, progress)]
    cells = [frames[k * steps : (k + 1) * steps] for k in range(top_k)]
    rows = [f"{k}: {float(eigenvalues[k]):.3g}" for k in range(top_k)]
    title = f"SeFa directions (eigenvalue), {describe_span(generator, first, last)}"
    return labelled_grid(cells, [f"{a:+.2f}" for a in amounts], rows, title)


def sefa_frames(generator, ws: torch.Tensor, directions: torch.Tensor, top_k: int = 5, amount: float = 3.0,
                frames_per_direction: int = 48, span: tuple[int, int] | None = None, size: int | None = None,
                levels: bool = False, batch_size: int = 8, progress=None):
    """Video frames: for each of the top k directions, 0 -> +amount -> -amount -> 0 along it, captioned."""
    check_int("top_k", top_k, at_least=1, at_most=len(directions))
    first, last = span or (0, generator.n_latent - 1)
    phase = np.arange(frames_per_direction) / frames_per_direction
    amounts = (amount * np.sin(2 * np.pi * phase)).tolist()
    moved = torch.cat([move(ws.cpu(), directions[k], amounts, first, last) for k in range(top_k)])
    for i, image in enumerate(synthesize(generator, moved, batch_size, progress)):
        k, a = divmod(i, frames_per_direction)
        yield caption(to_frame(image, size, levels), f"direction {k}: {amounts[a]:+.2f}")


def edit_recipe(metadata: dict, directions: torch.Tensor, index: int, amount: float, span: tuple[int, int]) -> dict:
    """A painting's recipe with one more SeFa edit (its direction stored); the search's score no longer applies."""
    edit = {"kind": "sefa", "index": int(index), "amount": float(amount), "layers": [int(span[0]), int(span[1])],
            "direction": directions[index].tolist()}
    recipe = {k: v for k, v in metadata.items() if k != "score"}
    return {**recipe, "edits": [*metadata.get("edits", []), edit]}


@dataclass
class SefaSettings(Tool):
    """python explore.py explore=sefa explore.source=outputs/.../painting.png explore.top_k=5 explore.amount=3"""

    source: int | str = 0          # a seed or a painting.png path
    top_k: int = 5                 # directions shown, largest eigenvalue first
    amount: float = 3.0            # the furthest move along a direction, in units of w (each direction has norm 1)
    steps: int = 7                 # grid columns from -amount to +amount
    layers: str | list[int] | None = None  # W+ layers moved: null (all), a name of `ranges` or [first, last]
    ranges: dict = field(default_factory=lambda: dict(RANGES))
    output: str = "grid"           # grid (PNG) | video (each direction in turn)
    fps: float = 24
    seconds: float = 2.0           # video: per direction
    format: str = "mp4"            # video: mp4 | gif
    size: int | None = None        # px of a cell or frame; null: the generator's
    levels: bool = False
    batch_size: int = 8
    cache_dir: str = "~/.cache/magnet/sefa"  # the directions, one file per checkpoint
    name: str = "sefa"

    def __post_init__(self):
        check_source("source", self.source)
        check_int("top_k", self.top_k, at_least=1)
        check_float("amount", self.amount, above=0)
        check_int("steps", self.steps, at_least=2, at_most=64)
        check_ranges("ranges", self.ranges)
        check_layers("layers", self.layers, self.ranges)
        check_choice("output", self.output, ("grid", "video"))
        check_video_settings(self.fps, self.format)
        check_float("seconds", self.seconds, above=0, at_most=600)
        check_frame_settings(self.size, self.levels, self.batch_size)
        check_text("cache_dir", self.cache_dir)
        check_text("name", self.name)

    def inputs(self) -> list[Path]:
        return painting_paths([self.source])

    def run(self, context: ExploreContext) -> Path:
        generator = context.generator
        span = layer_span(generator, self.layers, self.ranges)
        eigenvalues, directions = cached_directions(generator, context.ckpt_path, self.cache_dir)
        ws, _, _ = source_ws(generator, self.source)
        progress = context.progress_for("sefa")
        if self.output == "video":
            frames = sefa_frames(generator, ws, directions, self.top_k, self.amount,
                                 max(2, round(self.fps * self.seconds)), span, self.size, self.levels,
                                 self.batch_size, progress)
            return write_video(context.out_dir / self.name, frames, self.fps, self.format)
        grid, _ = sefa_grid(generator, ws, directions, eigenvalues, self.top_k, self.amount, self.steps, span,
                            self.size, self.levels, self.batch_size, progress)
        path = context.out_dir / f"{self.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
        return path


@dataclass
class EditSettings(Tool):
    """python explore.py explore=edit explore.painting=outputs/.../painting.png explore.direction=2 explore.amount=-2"""

    painting: str = "???"          # the painting.png to edit (its recipe gets the edit)
    direction: int = 0             # SeFa direction, 0 = largest eigenvalue
    amount: float = 3.0            # how far along it (negative: the other way)
    layers: str | list[int] | None = None  # W+ layers moved: null (all), a name of `ranges` or [first, last]
    ranges: dict = field(default_factory=lambda: dict(RANGES))
    cache_dir: str = "~/.cache/magnet/sefa"
    name: str = "painting"

    def __post_init__(self):
        check_file("painting", self.painting, what="painting.png")
        check_int("direction", self.direction, at_least=0)
        check_float("amount", self.amount)
        check_ranges("ranges", self.ranges)
        check_layers("layers", self.layers, self.ranges)
        check_text("cache_dir", self.cache_dir)
        check_text("name", self.name)

    def inputs(self) -> list[Path]:
        return [Path(self.painting)]

    def run(self, context: ExploreContext) -> Path:
        generator = context.generator
        _, directions = cached_directions(generator, context.ckpt_path, self.cache_dir)
        check_direction("direction", self.direction, directions)
        painting = read_painting(self.painting)
        painting.ws(generator)  # refuses a latent of another model before anything is written
        span = layer_span(generator, self.layers, self.ranges)
        recipe = {**edit_recipe(painting.metadata, directions, self.direction, self.amount, span), **context.recipe()}
        image = render_recipe(generator, recipe, painting.path)
        return save_png(context.out_dir / f"{self.name}.png", image, recipe)
