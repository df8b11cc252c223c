"""What every explore tool gets from the entry point (the `ExploreContext`), the base of their settings, and a
rich progress bar behind the plain `progress(label, done, total)` callback the library functions take."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from magnet.models.resolve import checkpoint_reference, checkpoint_sha256

ProgressCallback = Callable[[int, int], None]  # (done, total), called as the work goes on


@dataclass
class ExploreContext:
    """The opened generator and where a tool writes."""

    generator: torch.nn.Module
    out_dir: Path
    ckpt_path: str                      # the checkpoint the generator came from (name, URL or path)
    device: torch.device = torch.device("cpu")
    progress: Callable[[str, int, int], None] | None = None  # (label, done, total)

    def progress_for(self, label: str) -> ProgressCallback | None:
        return functools.partial(self.progress, label) if self.progress else None

    def recipe(self) -> dict:
        """The checkpoint's part of a painting's recipe: a reference that works from any folder, and its hash."""
        return {"checkpoint": checkpoint_reference(self.ckpt_path),
                "checkpoint_sha256": checkpoint_sha256(self.ckpt_path)}


class Tool:
    """Base of an explore tool's settings (a dataclass built from conf/explore/<tool>.yaml)."""

    def inputs(self) -> list[Path]:
        """The painting.png / search.json files it reads, whose recipes choose and check the checkpoint."""
        return []

    def run(self, context: ExploreContext) -> Path:
        """Do the work; returns the path of what it wrote."""
        raise NotImplementedError


@contextlib.contextmanager
def rich_progress():
    """A `progress(label, done, total)` callback drawing one rich bar per label."""
    bars = Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    tasks = {}

    def progress(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(label, total=total)
        bars.update(tasks[label], completed=done, total=total)

    with bars:
        yield progress
