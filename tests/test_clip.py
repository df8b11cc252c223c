"""The shared CLIP module with random weights: shapes, normalisation, caching, preprocessing parity, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from magnet.clip import load_clip
from magnet.errors import MissingFileError, UserError


def test_attributes_and_text_embeddings_are_normalised_and_cached(random_clip, monkeypatch):
    clip = random_clip
    assert (clip.model_name, clip.pretrained, clip.image_size, clip.embed_dim) == ("ViT-S-32", None, 224, 384)
    calls = []
    encode = clip.model.encode_text
    monkeypatch.setattr(clip.model, "encode_text", lambda tokens: calls.append(len(tokens)) or encode(tokens))

    first = clip.encode_text(["a cubist harbour at dusk", "modern painting, fauvist colours"])
    assert first.shape == (2, 384) and torch.allclose(first.norm(dim=-1), torch.ones(2), atol=1e-5)
    again = clip.encode_text(["modern painting, fauvist colours", "a new prompt"])
    assert calls == [2, 1]  # only the new prompt was encoded
    assert torch.equal(again[0], first[1])
    tokens = clip.tokenizer(["a cubist harbour at dusk"])
    direct = F.normalize(encode(tokens).float(), dim=-1)[0]
    assert torch.allclose(first[0], direct, atol=1e-5)


def test_long_prompt_is_truncated_with_a_warning(random_clip):
    long_prompt = "a very long description of a painting " * 20
    with pytest.warns(UserWarning, match="truncated"):
        embedding = random_clip.encode_text([long_prompt])
    assert embedding.shape == (1, 384)


def test_tensor_path_matches_open_clip_pil_preprocessing(random_clip, museum_paintings):
    painting = Image.open(museum_paintings[5]).convert("RGB").resize((96, 64), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.array(painting)).permute(2, 0, 1)[None].float() / 127.5 - 1
    from_tensor = random_clip.encode_images(x)
    from_pil = random_clip.encode_pil([painting])
    assert from_tensor.shape == from_pil.shape == (1, 384)
    assert torch.allclose(from_tensor.norm(dim=-1), torch.ones(1), atol=1e-5)
    # Same steps, different bicubic kernels (torch vs PIL): nearly the same embedding.
    assert F.cosine_similarity(from_tensor, from_pil).item() > 0.99
    other = Image.open(museum_paintings[6]).convert("RGB").resize((96, 64))
    assert F.cosine_similarity(from_pil, random_clip.encode_pil([other])).item() < \
        F.cosine_similarity(from_tensor, from_pil).item()


def test_image_embedding_is_differentiable(random_clip):
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    score = (random_clip.encode_images(x) @ random_clip.encode_text(["modern painting"]).T).sum()
    score.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in random_clip.model.parameters())


def test_missing_weights_file_or_unknown_model_is_a_user_error_naming_it(tmp_path):
    expected = r"pretrained='.*missing\.pt': must be an existing weights file, null or an open_clip tag of ViT-B-32 \("
    with pytest.raises(MissingFileError, match=expected):
        load_clip("ViT-B-32", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(UserError, match=r"model_name='ViT-Q-99': must be an open_clip model"):
        load_clip("ViT-Q-99", pretrained=None)


def test_local_weights_file_is_loaded(random_clip, tmp_path):
    weights = tmp_path / "clip.pt"
    torch.save(random_clip.model.state_dict(), weights)
    loaded = load_clip("ViT-S-32", pretrained=str(weights), device="cpu")
    assert loaded.pretrained == str(weights)
    prompt = ["a painting of a tree"]
    assert torch.allclose(loaded.encode_text(prompt), random_clip.encode_text(prompt), atol=1e-5)


def test_offline_tag_download_failure_names_the_fix(monkeypatch, tmp_path):
    import huggingface_hub.constants

    # What HF_HUB_OFFLINE=1 does, set in-process; an empty cache so no earlier download can answer instead.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"Offline\?.*clip\.pretrained=/path/to/"):
        load_clip("ViT-B-32", pretrained="openai", device="cpu")
