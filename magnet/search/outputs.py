"""What a search writes: the PNG with its recipe in the metadata, contact sheets, search.json and a GIF."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, PngImagePlugin

from magnet.errors import MissingFileError, UserError
from magnet.image_files import READ_ERRORS, open_image
from magnet.search.postprocess import auto_levels

METADATA_KEY = "magnet"  # PNG text chunk holding the JSON recipe (prompt, seed, checkpoint, settings, latent)


def save_png(path, image, metadata: dict) -> Path:
    """Auto-level a (3, H, W) generator image in [-1, 1] and write it with `metadata` as compressed JSON, plus
    a readable 'prompt' chunk. A non-finite image (which would come out black) is refused, and nothing written."""
    path = Path(path)
    pixels = torch.as_tensor(image)
    if not torch.isfinite(pixels).all():
        bad = int((~torch.isfinite(pixels)).sum())
        raise UserError(
            f"refusing to write {path}: {bad} of its {pixels.numel()} values are NaN/Inf, so it would be black; "
            "the generator or the latent is broken (a checkpoint of a diverged training, too high a refine.lr)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, json.dumps(metadata), zip=True)
    if "prompt" in metadata:
        info.add_text("prompt", str(metadata["prompt"]))
    Image.fromarray(auto_levels(pixels)).save(path, pnginfo=info)
    return path


def read_png_metadata(path) -> dict:
    """The JSON recipe stored by `save_png`; a clear error for a PNG that magnet did not write."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; give the path of a PNG written by generate.py")
    try:
        with open_image(path) as image:
            text = getattr(image, "text", {}).get(METADATA_KEY)
    except READ_ERRORS as err:
        raise UserError(f"{path} cannot be read as an image ({err}); give a painting.png written by magnet") from err
    if text is None:
        raise UserError(
            f"{path} has no '{METADATA_KEY}' metadata; only PNGs written by generate.py carry one"
        )
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: its '{METADATA_KEY}' metadata is not valid JSON ({err}); the file was altered") \
            from err
    if not isinstance(metadata, dict):
        raise UserError(f"{path}: its '{METADATA_KEY}' metadata is not a recipe (a JSON object); the file was altered")
    return metadata


def _tile(thumb: torch.Tensor) -> Image.Image:
    return Image.fromarray(thumb.permute(1, 2, 0).numpy())


def contact_sheet(thumbnails: torch.Tensor, scores: torch.Tensor, num_parents: int, columns: int = 0):
    """A grid of (N, 3, t, t) uint8 thumbnails with their scores: the parents on the top row, children below.

    With num_parents == k and k * k children (MAGnet's layout), child (i, j) sits in row j, column i.
    """
    t = thumbnails.shape[-1]
    label_h = 12
    parents, children = thumbnails[:num_parents], thumbnails[num_parents:]
    if not columns:
        columns = (
            max(num_parents, math.ceil(math.sqrt(len(children)))) if num_parents else min(len(children), 20)
        )
    rows = (1 if num_parents else 0) + -(-len(children) // columns)
    gap = 4 if num_parents else 0  # a band between the parents and the children
    sheet = Image.new("RGB", (columns * t, rows * (t + label_h) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    positions = [(c, 0) for c in range(len(parents))]
    first_child_row = 1 if num_parents else 0
    positions += [(k % columns, first_child_row + k // columns) for k in range(len(children))]
    for (col, row), thumb, score in zip(positions, thumbnails, scores, strict=True):
        x, y = col * t, row * (t + label_h) + (gap if row >= first_child_row and num_parents else 0)
        sheet.paste(_tile(thumb), (x, y))
        draw.text((x + 2, y + t), f"{float(score):+.4f}", fill="black")
    return sheet


def write_search_json(path, record: dict, result) -> Path:
    """Every generation's scores and latents, plus the recipe in `record`, as JSON."""
    generations = [
        {
            "num_parents": g.num_parents,
            "scores": g.scores.tolist(),
            "latents": g.latents.tolist(),
        }
        for g in result.generations
    ]
    data = {
        **record,
        "renders": result.renders,
        "previews": result.previews,
        "best_scores": result.best_scores,
        "generations": generations,
    }
    path = Path(path)
    path.write_text(json.dumps(data))
    return path


def write_gif(path, frames: list[np.ndarray], captions: list[str], duration_ms: int = 700) -> Path:
    """An animated GIF of (H, W, 3) uint8 frames, each over a caption strip (e.g. generation and best score)."""
    images = []
    for frame, caption in zip(frames, captions, strict=True):
        h, w = frame.shape[:2]
        image = Image.new("RGB", (max(w, 96), h + 12), "white")
        image.paste(Image.fromarray(frame), (0, 0))
        ImageDraw.Draw(image).text((2, h), caption, fill="black")
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return Path(path)
