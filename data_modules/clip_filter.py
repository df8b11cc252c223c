"""Keep the crops CLIP finds closest to the prompts; move the rest to a rejected folder (never delete).

Crops are ranked afresh over the kept and the rejected folder together, so a rerun with another prompt or K
can bring crops back. Image embeddings are cached per (model, weights) and keyed by each file's SHA-256, so
a rerun embeds only crops it has never seen.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track

from data_modules.files import atomic_write_csv, sha256_file
from magnet.atomic import atomic_path
from magnet.checks import check_float, check_int, check_texts
from magnet.errors import MissingFileError
from magnet.image_files import list_images

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Image embeddings of one CLIP model and weights, by file SHA-256, in one torch file saved atomically."""

    def __init__(self, cache_dir: str | Path, model_name: str, pretrained: str | None):
        key = re.sub(r"[^\w.-]+", "_", f"{model_name}__{pretrained or 'random'}")
        self.path = Path(cache_dir) / f"{key}.pt"
        self.model_name, self.pretrained = model_name, pretrained
        self.rows: dict[str, torch.Tensor] = {}
        if self.path.exists():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            if (saved["model_name"], saved["pretrained"]) == (model_name, pretrained):
                self.rows = dict(zip(saved["sha256"], saved["embeddings"]))

    def save(self) -> None:
        keys = list(self.rows)
        data = {"model_name": self.model_name, "pretrained": self.pretrained, "sha256": keys,
                "embeddings": torch.stack([self.rows[k] for k in keys]) if keys else torch.empty(0)}
        with atomic_path(self.path) as tmp:
            torch.save(data, tmp)


@dataclass
class FilterSummary:
    """Counts of a filter run."""

    crops: int
    embedded: int  # new embeddings computed in this run (the rest came from the cache)
    kept: int
    rejected: int
    unreadable: int

    def line(self) -> str:
        return (f"{self.crops} crops ({self.embedded} newly embedded): kept {self.kept}, "
                f"rejected {self.rejected}, unreadable {self.unreadable}")


def _load_rgb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:
        log.warning("unreadable crop %s (%s): moved to the rejected folder", path, e)
        return None


def _embed_missing(clip, cache: EmbeddingCache, files: dict[str, Path], batch_size: int) -> tuple[int, set[str]]:
    """Embed files whose hash the cache lacks; returns (how many were embedded, hashes of unreadable files)."""
    todo = [(sha, path) for sha, path in files.items() if sha not in cache.rows]
    unreadable: set[str] = set()
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    with ThreadPoolExecutor(4) as pool:
        for n, batch in enumerate(track(batches, description="embedding crops"), start=1):
            images = list(pool.map(_load_rgb, [path for _, path in batch]))
            good = [(sha, image) for (sha, _), image in zip(batch, images) if image is not None]
            unreadable |= {sha for (sha, _), image in zip(batch, images) if image is None}
            if good:
                embeddings = clip.encode_pil([image for _, image in good]).cpu()
                cache.rows.update((sha, row.clone()) for (sha, _), row in zip(good, embeddings))
            if n % 20 == 0:  # an interrupted run keeps most of its work
                cache.save()
    if todo:
        cache.save()
    return len(todo) - len(unreadable), unreadable


def check_filter_settings(prompts: Sequence[str], top_k: int | None, threshold: float | None,
                          batch_size: int) -> None:
    """Refuse bad filter settings (`prepare` checks them before any stage runs)."""
    check_texts("prompts", prompts)
    check_int("top_k", top_k, at_least=1, optional=True)
    check_float("threshold", threshold, at_least=-1, at_most=1, optional=True)  # a cosine similarity
    check_int("batch_size", batch_size, at_least=1)


def filter_crops(clip, crops_dir: str | Path, rejected_dir: str | Path, prompts: Sequence[str], top_k: int | None,
                 threshold: float | None, batch_size: int, cache_dir: str | Path,
                 scores_csv: str | Path) -> FilterSummary:
    """Score every crop in `crops_dir` and `rejected_dir` against `prompts`; leave the best in `crops_dir`.

    Kept: the `top_k` best (all if None) that also score at least `threshold` (if set). Score: the mean
    cosine similarity to the prompts. Writes `scores_csv` (file, sha256, score, rank, kept).
    """
    check_filter_settings(prompts, top_k, threshold, batch_size)
    crops_dir, rejected_dir = Path(crops_dir), Path(rejected_dir)
    located = [(path, crops_dir) for path in list_images(crops_dir)]
    located += [(path, rejected_dir) for path in list_images(rejected_dir)] if rejected_dir.exists() else []
    if not located:
        raise MissingFileError(f"no crops in {crops_dir} or {rejected_dir}: run the crop stage first")
    hashes = {path: sha256_file(path) for path, _ in track(located, description="hashing crops")}
    cache = EmbeddingCache(cache_dir, clip.model_name, clip.pretrained)
    embedded, unreadable = _embed_missing(clip, cache, {hashes[p]: p for p, _ in located}, batch_size)

    text = clip.encode_text(list(prompts)).cpu()
    readable = [(path, root) for path, root in located if hashes[path] not in unreadable]
    scores = (torch.stack([cache.rows[hashes[p]] for p, _ in readable]) @ text.T).mean(dim=1) \
        if readable else torch.empty(0)
    order = sorted(range(len(readable)), key=lambda i: (-scores[i].item(), str(readable[i][0])))
    rank = {i: r for r, i in enumerate(order, start=1)}
    limit = len(order) if top_k is None else top_k

    rows, kept = [], 0
    for i, (path, root) in enumerate(readable):
        keep = rank[i] <= limit and (threshold is None or scores[i].item() >= threshold)
        kept += keep
        target = _move(path, root, crops_dir if keep else rejected_dir)
        rows.append({"file": str(target.relative_to(crops_dir if keep else rejected_dir)), "sha256": hashes[path],
                     "score": f"{scores[i].item():.6f}", "rank": rank[i], "kept": int(keep)})
    for path, root in located:
        if hashes[path] in unreadable:
            target = _move(path, root, rejected_dir)
            rows.append({"file": str(target.relative_to(rejected_dir)), "sha256": hashes[path],
                         "score": math.nan, "rank": "", "kept": 0})
    rows.sort(key=lambda row: row["rank"] or math.inf)
    atomic_write_csv(scores_csv, ["file", "sha256", "score", "rank", "kept"], rows)
    return FilterSummary(len(located), embedded, kept, len(located) - kept - len(unreadable), len(unreadable))


def _move(path: Path, root: Path, new_root: Path) -> Path:
    """Move `path` from under `root` to the same relative place under `new_root` (no-op when the same)."""
    if root == new_root:
        return path
    target = new_root / path.relative_to(root)
    if target.exists():
        raise FileExistsError(f"{target} already exists; not overwriting it with {path}. Rename one of them.")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target
