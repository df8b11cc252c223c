"""Prompts: parse weighted text (and image) prompts and turn them into one CLIP score for generator output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from magnet.errors import MissingFileError, UserError


@dataclass(frozen=True)
class WeightedPrompt:
    """One part of a prompt: a text, or an image file when `is_image`, with its weight (negative = avoid)."""

    text: str
    weight: float = 1.0
    is_image: bool = False


def _split_weight(part: str) -> tuple[str, float]:
    """'blue:0.5' -> ('blue', 0.5); a tail after the last ':' that is not a number belongs to the text."""
    head, sep, tail = part.rpartition(":")
    if sep:
        try:
            return head.strip(), float(tail)
        except ValueError:
            pass
    return part.strip(), 1.0


def parse_prompt(prompt: str | list[str] | tuple[str, ...], image_prompts=()) -> list[WeightedPrompt]:
    """Parse "orange triangles | blue:0.5 | text:-1" (or a list of parts) and image files "path[:weight]"."""
    parts = prompt.split("|") if isinstance(prompt, str) else [str(p) for p in prompt]
    parsed = [WeightedPrompt(*_split_weight(p)) for p in parts if p.strip()]
    for spec in image_prompts or ():
        path, weight = _split_weight(str(spec))
        if not Path(path).is_file():
            raise MissingFileError(f"image_prompts has {path!r}, which does not exist; give the path of an image file")
        parsed.append(WeightedPrompt(path, weight, is_image=True))
    if any(not p.text for p in parsed):
        raise UserError(f"prompt {prompt!r} has a part with a weight but no text; write e.g. 'blue:0.5'")
    if not parsed:
        raise UserError(f"prompt {prompt!r} is empty; give a text such as prompt='orange triangles'")
    if all(p.weight == 0 for p in parsed):
        raise UserError(f"prompt {prompt!r} has only zero weights; give at least one part a nonzero weight")
    return parsed


def prompt_label(prompts: list[WeightedPrompt]) -> str:
    """A canonical one-line form of parsed prompts, e.g. 'orange triangles | blue:0.5'."""
    labels = []
    for p in prompts:
        name = f"image={p.text}" if p.is_image else p.text
        labels.append(name if p.weight == 1.0 else f"{name}:{p.weight:g}")
    return " | ".join(labels)


class ClipObjective(nn.Module):
    """Score of images against prompts: the weighted sum of CLIP cosine similarities (differentiable).

    With one text of weight 1 this is MAGnet's score, the dot product of the L2-normalised features.
    """

    def __init__(self, clip, prompts: list[WeightedPrompt]):
        super().__init__()
        self.clip = clip
        self.prompts = list(prompts)
        targets = []
        texts = [p.text for p in self.prompts if not p.is_image]
        text_features = iter(clip.encode_text(texts)) if texts else iter(())
        images = [p.text for p in self.prompts if p.is_image]
        image_features = iter(clip.encode_pil([_open_rgb(path) for path in images])) if images else iter(())
        for p in self.prompts:
            targets.append(next(image_features) if p.is_image else next(text_features))
        self.register_buffer("targets", torch.stack(targets).detach().float())
        self.register_buffer("weights", torch.tensor([p.weight for p in self.prompts], dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> scores (N,)."""
        features = self.clip.encode_images(images).float()
        targets = self.targets.to(features.device)
        return (features @ targets.T) @ self.weights.to(features.device)


def _open_rgb(path: str):
    """An image prompt as upright RGB, with the pixel limit of every image magnet reads."""
    from magnet.image_files import READ_ERRORS, read_rgb

    try:
        return read_rgb(path)
    except READ_ERRORS as err:
        raise UserError(f"image prompt {path} cannot be read ({err}); give a JPEG/PNG/WebP image file") from err


def collect_prompts(prompt=None, prompts=None) -> list:
    """The prompts of one run: `prompt` (one prompt) or `prompts` (a list, or a text file, one per line)."""
    if (prompt is None) == (prompts is None):
        raise UserError("give exactly one of prompt='orange triangles' or prompts=[...] / prompts=file.txt")
    if prompt is not None:
        return [prompt]
    if isinstance(prompts, str | Path):
        path = Path(prompts)
        if not path.is_file():
            raise MissingFileError(
                f"prompts={prompts!r} is not a file; give a list or a text file, one prompt a line"
            )
        prompts = [line.strip() for line in path.read_text().splitlines()]
        prompts = [line for line in prompts if line and not line.startswith("#")]
    if not prompts:
        raise UserError("prompts is empty; give at least one prompt")
    return list(prompts)
