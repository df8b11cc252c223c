"""Published generators by name: where each is downloaded from, what it is and under which licence.

Sizes and SHA-256 sums are given only where they were measured on the published file; None means not known
yet (the download then is checked for completeness, not against a checksum). Never fill them in by guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from magnet.registry import Registry


@dataclass(frozen=True)
class PublishedModel:
    name: str                  # what users type: ckpt_path=magnet, model.init_from=metfaces
    source: str                # the http(s) URL it is published at
    file_name: str             # its name in the cache
    format: str                # rosinality (torch.save of g, d, g_ema) | nvlabs-pkl (NVlabs' network pickle)
    arch: str                  # swagan | stylegan2
    resolution: int            # px of the square images it makes
    licence: str
    description: str
    size: int | None = None    # bytes; None: not known
    sha256: str | None = None  # hex digest of the file; None: not known


MODELS: Registry[PublishedModel] = Registry("model")


def publish(model: PublishedModel) -> PublishedModel:
    """Add a model to MODELS under its name."""
    return MODELS.register(model.name)(model)


# MAGnet's generation notebook fetches this file with `gdown --id 15-bJ9QyLGJqd97pAK9_O12cEQV9591o8`.
publish(PublishedModel(
    name="magnet",
    source="https://drive.google.com/uc?export=download&id=15-bJ9QyLGJqd97pAK9_O12cEQV9591o8",
    file_name="MAGnet_250.pt",
    format="rosinality",
    arch="swagan",
    resolution=512,
    licence="MIT (MAGnet's repository)",  # the weights have no terms of their own
    description="MAGnet: modern paintings (public domain, WikiArt), rosinality's SWAGAN",
))

# NVlabs/stylegan2-ada-pytorch's README lists these under pretrained/ and puts "this work" under the NVIDIA Source
# Code License for StyleGAN2-ADA, whose use limitation is non-commercial: research or evaluation only.
_NVLABS = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NVLABS_LICENCE = "NVIDIA Source Code License, non-commercial"
for _name, _resolution, _what in [
    ("metfaces", 1024, "MetFaces: faces in works of art at the Met, fine-tuned from FFHQ"),
    ("ffhq", 1024, "FFHQ: photos of faces"),
    ("afhqcat", 512, "AFHQ: photos of cats"),
    ("afhqdog", 512, "AFHQ: photos of dogs"),
    ("afhqwild", 512, "AFHQ: photos of wild animals"),
    ("brecahad", 512, "BreCaHAD: breast cancer histology"),
    ("cifar10", 32, "CIFAR-10, class-conditional (10 classes)"),
]:
    publish(PublishedModel(name=_name, source=f"{_NVLABS}{_name}.pkl", file_name=f"{_name}.pkl",
                           format="nvlabs-pkl", arch="stylegan2", resolution=_resolution,
                           licence=_NVLABS_LICENCE, description=_what))
