"""Models the studio's sessions share: generators and CLIP loaded once, and which checkpoints the page offers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch

from magnet.clip import check_clip, load_clip
from magnet.errors import UserError
from magnet.models.hub import HUB_PREFIX
from magnet.models.registry import MODELS
from magnet.models.resolve import WEB, checkpoint_reference
from magnet.nn.checkpoint import load_generator

LAST_RUN = "last training run"  # the picker's entry for the newest last.ckpt under the training runs folder


def last_checkpoint(runs_dir) -> Path | None:
    """The newest `.../checkpoints/last.ckpt` at any depth under `runs_dir` (train.py's log folder), if any."""
    found = sorted(Path(runs_dir).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def model_choices(runs_dir) -> list[str]:
    """What the model picker lists: the published models' names, then the training run's last.ckpt if any."""
    return MODELS.names() + ([LAST_RUN] if last_checkpoint(runs_dir) else [])


def page_reference(text: str, runs_dir) -> str:
    """A model given in the page as a checkpoint reference: a published name, the last run, or a local file.

    """
    text = (text or "").strip()
    if not text:
        raise UserError("no model given: pick a published model or type the path of a local checkpoint file")
    if text == LAST_RUN:
        path = last_checkpoint(runs_dir)
        if path is None:
            raise UserError(f"no training run with a last.ckpt under {runs_dir}; train one or give a checkpoint file")
        return str(path)
    return local_reference(text)


def local_reference(ref: str) -> str:
    """`ref` unless it is a URL or hf://: what a visitor names must not make the server download anything."""
    if str(ref).startswith((HUB_PREFIX, *WEB)):
        raise UserError(f"{ref}: the studio loads published models by name and local files only; download it "
                        "and give its path")
    return ref


class SharedModels:
    """Generators (the `capacity` last used) and CLIP models loaded once on `device`, read-only afterwards."""

    def __init__(self, device: torch.device, capacity: int = 2):
        self.device = torch.device(device)
        self.capacity = capacity
        self._lock = threading.Lock()
        self._generators: OrderedDict[str, torch.nn.Module] = OrderedDict()
        self._clips: OrderedDict[tuple, object] = OrderedDict()

    def generator(self, ref: str):
        """The generator of a checkpoint reference; its readers refuse pickled code and name what is wrong."""
        key = checkpoint_reference(ref)
        with self._lock:
            if key not in self._generators:
                self._generators[key] = load_generator(ref, device=self.device).requires_grad_(False)
            return self._remember(self._generators, key)

    def clip(self, model_name: str, pretrained: str | None):
        with self._lock:
            key = (model_name, pretrained)
            if key not in self._clips:
                check_clip(model_name, pretrained, self.device)
                torch.manual_seed(0)  # a CLIP with random weights (pretrained=None, tests) is always the same one
                self._clips[key] = load_clip(model_name, pretrained, device=self.device)
            return self._remember(self._clips, key)

    def _remember(self, cache: OrderedDict, key):
        cache.move_to_end(key)
        while len(cache) > self.capacity:
            cache.popitem(last=False)
        return cache[key]
