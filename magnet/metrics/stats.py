"""Features of an image folder (the real side of FID/KID), cached under a key of everything that made them.

The key covers the folder, a hash of its file list (names, sizes, modification times), the image size, the
feature network and the image reader's version, so adding, removing or editing an image, changing the size,
or a reader that decodes differently recomputes them.
"""

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from rich.progress import track
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from magnet.atomic import atomic_path
from magnet.errors import MissingFileError, UserError
from magnet.image_files import IMAGE_EXTENSIONS, READER_VERSION, list_images
from magnet.images import load_square


def real_images(folder: str | os.PathLike) -> list[Path]:
    """The images of a real set, as training lists them; an error naming the folder when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"Image folder {str(folder)!r} does not exist; point data_dir at a folder.")
    files = list_images(folder)
    if not files:
        raise UserError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(folder)!r}.")
    return files


class _Images(Dataset):
    def __init__(self, files: list[Path], size: int):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        return load_square(self.files[i], self.size)


def cache_key(folder: Path, files: list[Path], size: int, network: str) -> str:
    """A hash of the folder, its file list (names, sizes, times), the image size, the network and the reader."""
    listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    files_hash = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    what = {"folder": str(folder.resolve()), "files": files_hash, "size": size, "network": network,
            "reader": READER_VERSION}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:20]


@torch.no_grad()
def folder_features(
    folder: str | os.PathLike,
    network: Callable[[Tensor], Tensor],
    size: int,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Tensor:
    """(N, D) float32 features of every image in `folder` at `size` px, read from the cache when present.

    `network` maps uint8 (B, 3, size, size) to (B, D) and has a `name` attribute; name None disables the
    cache (for a network whose weights are not a fixed file, such as a randomly initialised CLIP).
    """
    folder = Path(folder)
    files = real_images(folder)
    name = getattr(network, "name", None)
    cache_file = None
    if cache_dir is not None and name is not None:
        key = cache_key(folder, files, size, name)
        readable = re.sub(r"[^\w.-]+", "_", f"{folder.resolve().name}-{size}px-{name}")
        cache_file = Path(cache_dir).expanduser() / f"{readable}-{key}.pt"
        if cache_file.is_file():
            return torch.load(cache_file, map_location="cpu", weights_only=True)["features"]
    loader = DataLoader(_Images(files, size), batch_size=batch_size, num_workers=num_workers)
    batches = track(loader, description=f"Features of {folder.name}", disable=not progress)
    features = torch.cat([network(batch.to(device)).float().cpu() for batch in batches])
    if cache_file is not None:
        meta = {"folder": str(folder.resolve()), "num_images": len(files), "size": size, "network": name}
        with atomic_path(cache_file) as tmp:  # another process never reads half a file
            torch.save({"features": features, **meta}, tmp)
    return features
