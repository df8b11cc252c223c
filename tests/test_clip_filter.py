"""CLIP filter over real crops with a random-weight CLIP: ranking, moves, cache reuse, CSV, unreadable files."""

from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from data_modules.clip_filter import EmbeddingCache, filter_crops
from data_modules.crop import crop_painting
from data_modules.files import sha256_file
from magnet.image_files import list_images


@pytest.fixture
def crops(museum_paintings, tmp_path):
    out = tmp_path / "crops"
    out.mkdir()
    for painting in museum_paintings[:2]:
        crop_painting(painting, out, size=32, min_side=8, jpeg_quality=95, overwrite=False)
    return out


def run(clip, root, **overrides):
    settings = dict(crops_dir=root / "crops", rejected_dir=root / "modern_salon_des_refuses",
                    prompts=["modern painting"], top_k=3, threshold=None, batch_size=4,
                    cache_dir=root / "cache", scores_csv=root / "scores.csv")
    return filter_crops(clip, **{**settings, **overrides})


def read_scores(path):
    with open(path, newline="") as f:
        return {row["sha256"]: row for row in csv.DictReader(f)}


def test_keeps_top_k_moves_the_rest_and_reuses_embeddings(random_clip, crops, monkeypatch):
    root = crops.parent
    everything = {sha256_file(p) for p in list_images(crops)}
    assert len(everything) == 6
    batches = []
    encode_pil = random_clip.encode_pil
    monkeypatch.setattr(random_clip, "encode_pil", lambda images: batches.append(len(images)) or encode_pil(images))

    summary = run(random_clip, root)
    assert batches == [4, 2] and summary.embedded == 6
    assert (summary.crops, summary.kept, summary.rejected, summary.unreadable) == (6, 3, 3, 0)
    kept = {sha256_file(p): p for p in list_images(crops)}
    rejected = {sha256_file(p): p for p in list_images(root / "modern_salon_des_refuses")}
    assert len(kept) == 3 and set(kept) | set(rejected) == everything  # moved, never deleted

    # Reference: the crops embedded in one batch outside the filter (no cache), scored against the prompts.
    shas, paths = zip(*{**kept, **rejected}.items())
    embeddings = encode_pil([Image.open(p).convert("RGB") for p in paths])
    reference = dict(zip(shas, (embeddings @ random_clip.encode_text(["modern painting"]).T)[:, 0].tolist()))
    scores = read_scores(root / "scores.csv")
    assert all(abs(float(scores[sha]["score"]) - ref) < 1e-4 for sha, ref in reference.items())
    assert set(kept) == set(sorted(reference, key=reference.get, reverse=True)[:3])
    assert {sha for sha, row in scores.items() if row["kept"] == "1"} == set(kept)

    # Another prompt and a threshold instead of K: nothing is embedded again; crops may come back.
    prompts = ["an abstract expressionist canvas", "bright fauvist colours"]
    mean_scores = dict(zip(shas, (embeddings @ random_clip.encode_text(prompts).T).mean(dim=1).tolist()))
    lowest = sorted(mean_scores.values())
    threshold = (lowest[0] + lowest[1]) / 2  # keeps five of six
    batches.clear()
    again = run(random_clip, root, prompts=prompts, top_k=None, threshold=threshold)
    assert batches == [] and again.embedded == 0
    assert {sha256_file(p) for p in list_images(crops)} == {s for s, v in mean_scores.items() if v >= threshold}
    assert again.kept == 5 and again.rejected == 1
    assert EmbeddingCache(root / "cache", "ViT-S-32", "other-weights").rows == {}  # keyed by the weights too


def test_unreadable_crop_is_set_aside_not_fatal(random_clip, crops):
    for crop in list_images(crops)[3:]:  # three real crops are enough here
        crop.unlink()
    (crops / "broken_ctr.jpg").write_bytes(b"\xff\xd8\xff garbage")
    summary = run(random_clip, crops.parent, top_k=10)
    assert (summary.crops, summary.kept, summary.unreadable) == (4, 3, 1)
    assert (crops.parent / "modern_salon_des_refuses" / "broken_ctr.jpg").exists()
    assert torch.isnan(torch.tensor(float(read_scores(crops.parent / "scores.csv")[
        sha256_file(crops.parent / "modern_salon_des_refuses" / "broken_ctr.jpg")]["score"])))


def test_empty_folders_and_prompts_are_clear_errors(random_clip, tmp_path):
    with pytest.raises(FileNotFoundError, match="run the crop stage"):
        run(random_clip, tmp_path)
    with pytest.raises(ValueError, match="prompts"):
        run(random_clip, tmp_path, prompts=[])
