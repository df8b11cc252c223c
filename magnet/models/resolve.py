"""Any checkpoint reference to a local file: a published model's name (`python -m magnet.models`),
hf://owner/repo/file, an http(s) URL, each downloaded once into the cache, or a path."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from magnet.errors import MissingFileError
from magnet.models.download import download
from magnet.models.hub import HUB_PREFIX, hub_file
from magnet.models.registry import MODELS, PublishedModel

CACHE_ENV = "MAGNET_CACHE"  # magnet's cache folder; downloaded models go to its models/ sub-folder
WEB = ("http://", "https://")


def models_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where downloaded models are kept: `cache_dir`, else $MAGNET_CACHE/models, else ~/.cache/magnet/models."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/magnet").expanduser() / "models"


def cached_path(model: PublishedModel, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where a published model's file is (or will be) in the cache."""
    return models_dir(cache_dir) / model.file_name


def fetch_model(model: PublishedModel, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local file of a published model, downloaded on first use."""
    path = cached_path(model, cache_dir)
    if path.is_file():
        return path
    return download(model.source, path, f"{model.name} ({model.file_name})", model.size, model.sha256)


def resolve_checkpoint(ref: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local file for `ref`: a model name, hf://owner/repo/file, an http(s) URL or an existing path.

    Only a str can be a name or a URL; a name wins over a file of the same name in the working folder
    (write ./magnet for that one). Nothing is downloaded when the file is in the cache already.
    """
    if isinstance(ref, str):
        if ref in MODELS:
            return fetch_model(MODELS.get(ref), cache_dir)
        if ref.startswith(HUB_PREFIX):
            return hub_file(ref, models_dir(cache_dir) / "huggingface")
        if ref.startswith(WEB):
            return _fetch_url(ref, cache_dir)
    path = Path(ref).expanduser()
    if path.exists():
        return path
    raise MissingFileError(
        f"checkpoint {ref} does not exist and is not a model name; give the path of a .pt/.ckpt file, a name "
        f"({', '.join(MODELS.names())}: python -m magnet.models), hf://owner/repo/file or an https:// URL"
    )


def checkpoint_reference(ref: str | os.PathLike) -> str:
    """`ref` as it can be given again from any folder: names and URLs as they are, a path made absolute."""
    if isinstance(ref, str) and (ref in MODELS or ref.startswith((HUB_PREFIX, *WEB))):
        return ref
    return str(Path(ref).expanduser().resolve())


def checkpoint_sha256(ref: str | os.PathLike) -> str:
    """The SHA-256 of a checkpoint's file (hex), the identity a painting records of the model that made it."""
    path = resolve_checkpoint(ref)
    stat = path.stat()
    return _file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and time: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_url(url: str, cache_dir) -> Path:
    for name in MODELS.names():  # a published model's own URL: the same cached file as its name
        if MODELS.get(name).source == url:
            return fetch_model(MODELS.get(name), cache_dir)
    name = Path(unquote(urlsplit(url).path)).name
    file_name = name if name.strip(".") else "checkpoint"  # nothing, "." or ".." after the last slash
    path = models_dir(cache_dir) / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / file_name
    return path if path.is_file() else download(url, path, file_name)
