"""One way to load an open_clip model and embed prompts and images, shared by the data filter and the search.

Weights come from an open_clip tag (downloaded once into the Hugging Face cache), a local file, or nowhere
(`pretrained=None`: random weights, for tests). Every embedding is L2-normalised.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from magnet.checks import check_device
from magnet.errors import ConfigError, MissingPathError


class Clip:
    """A frozen open_clip model with its tokenizer and preprocessing; text embeddings cached per prompt."""

    def __init__(self, model: torch.nn.Module, preprocess, tokenizer, model_name: str, pretrained: str | None):
        self.model = model.eval().requires_grad_(False)
        self.preprocess = preprocess  # PIL image -> normalised tensor, open_clip's own pipeline
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.pretrained = pretrained
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.embed_dim = int(open_clip.get_model_config(model_name)["embed_dim"])
        self._mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
        self._text_cache: dict[str, torch.Tensor] = {}
        self._visual_bf16: torch.nn.Module | None = None  # made on the first bf16 call on a CPU

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """(N, D) embeddings of the prompts; each prompt is encoded once, then served from the cache."""
        new = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if new:
            tokens = self.tokenizer(new)
            for prompt, row in zip(new, tokens):
                if self._truncated(prompt, row):
                    warnings.warn(f"prompt longer than CLIP's {tokens.shape[1]} tokens, truncated: {prompt!r}",
                                  stacklevel=2)
            features = F.normalize(self.model.encode_text(tokens.to(self.device)).float(), dim=-1)
            self._text_cache.update(zip(new, features))
        return torch.stack([self._text_cache[p] for p in prompts])

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, D) embeddings of NCHW images in [-1, 1] of any size; differentiable with respect to `images`.

        Shorter side resized to the model's input size (antialiased bicubic), centre-cropped, then CLIP's
        mean/std, all on the images' device: the same steps as open_clip's PIL preprocessing.
        """
        x = ((images.float() + 1) / 2).clamp(0, 1)
        h, w = x.shape[-2:]
        scale = self.image_size / min(h, w)
        size = (max(self.image_size, round(h * scale)), max(self.image_size, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        top, left = (size[0] - self.image_size) // 2, (size[1] - self.image_size) // 2
        x = x[..., top:top + self.image_size, left:left + self.image_size]
        x = (x - self._mean.to(x.device)) / self._std.to(x.device)
        x = x.to(self.device)
        if self.device.type == "cpu" and torch.is_autocast_enabled("cpu") and \
                torch.get_autocast_dtype("cpu") == torch.bfloat16:
            # CPU autocast casts every weight on every call and sends open_clip's 3-D linears through batched
            # matmuls with copies (ViT-B/32: 6x slower than float32); a bf16 copy of the image tower runs 2x faster.
            with torch.autocast("cpu", enabled=False):
                return F.normalize(self._bf16_visual()(x.to(torch.bfloat16)).float(), dim=-1)
        return F.normalize(self.model.encode_image(x).float(), dim=-1)

    def _bf16_visual(self) -> torch.nn.Module:
        if self._visual_bf16 is None:
            self._visual_bf16 = copy.deepcopy(self.model.visual).to(torch.bfloat16)
        return self._visual_bf16

    @torch.no_grad()
    def encode_pil(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(N, D) embeddings of PIL images through open_clip's own preprocessing (the data filter's path)."""
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        return F.normalize(self.model.encode_image(batch).float(), dim=-1)

    def _truncated(self, prompt: str, row: torch.Tensor) -> bool:
        encode = getattr(self.tokenizer, "encode", None)
        if isinstance(self.tokenizer, open_clip.tokenizer.SimpleTokenizer) and encode is not None:
            return len(encode(prompt)) + 2 > row.shape[0]  # + start and end tokens
        return bool(row[-1] != 0)  # other tokenizers: no padding left means the prompt filled the context


def check_clip(model_name: str, pretrained: str | None, device: str | torch.device | None = None) -> None:
    """Refuse an unknown model, weights that are neither a tag nor a file, or a missing device, before loading."""
    if not isinstance(model_name, str) or model_name not in open_clip.list_models():
        raise ConfigError("model_name", model_name, "an open_clip model (open_clip.list_models()), e.g. ViT-B-32")
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained is not None and (not isinstance(pretrained, str) or
                                   pretrained not in tags and not os.path.isfile(pretrained)):
        known = ", ".join(tags[:5]) + (", ..." if len(tags) > 5 else "") if tags else "none"
        raise MissingPathError("pretrained", pretrained, f"an existing weights file, null or an open_clip tag of "
                                                         f"{model_name} ({known})")
    check_device("device", device)


def load_clip(model_name: str = "ViT-B-32", pretrained: str | None = "openai",
              device: str | torch.device | None = None) -> Clip:
    """Build `model_name` with weights `pretrained` (open_clip tag, local file path, or None for random)."""
    check_clip(model_name, pretrained, device)
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained,
                                                                     device=device)
    except RuntimeError as e:
        if pretrained in tags:
            raise RuntimeError(
                f"could not get CLIP weights {model_name}/{pretrained} ({e}). Offline? Download the weights on a "
                f"connected machine (open_clip caches them under ~/.cache/huggingface) and point at the file: "
                f"clip.pretrained=/path/to/open_clip_pytorch_model.bin"
            ) from e
        raise
    return Clip(model, preprocess, open_clip.get_tokenizer(model_name), model_name, pretrained)
