"""LightningDataModule over a folder of images: square, mirrored, scaled to [-1, 1].

The order of the images is a pure function of the seed and the epoch, sharded across ranks by our own
sampler (the trainer runs with `use_distributed_sampler=False`), so a run resumed mid-epoch sees exactly
the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from data_modules.sampler import ResumableShuffle
from magnet.checks import check_bool, check_dir, check_int
from magnet.errors import MissingFileError
from magnet.image_files import IMAGE_EXTENSIONS, READ_ERRORS, list_images, open_image
from magnet.images import load_square


class ImageFolder(Dataset):
    """Images under a folder as (3, size, size) float tensors in [-1, 1]; non-square ones centre-cropped.

    With `flip`, the dataset is doubled with mirror images (NVlabs' --mirror): item i + N is item i
    flipped, so which images are flipped is decided by the sampler's order, not by a random draw.

    A file that cannot be read (corrupt, truncated, or too large: refused from its header) is reported once
    and replaced by the next readable one, so one bad file does not end an epoch.
    """

    def __init__(self, files: list[Path], size: int, flip: bool):
        self.files, self.size, self.flip = files, size, flip
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files) * (2 if self.flip else 1)

    def __getitem__(self, index: int) -> torch.Tensor:
        mirror, index = divmod(index, len(self.files))
        x = self._read(index)
        return x.flip(-1) if mirror else x

    def _read(self, index: int) -> torch.Tensor:
        for offset in range(len(self.files)):
            i = (index + offset) % len(self.files)
            if i in self._bad:
                continue
            try:
                return load_square(self.files[i], self.size).float().div_(127.5).sub_(1)
            except READ_ERRORS as e:
                self._bad.add(i)  # per worker process: each worker reports a bad file at most once
                warnings.warn(f"skipping unreadable image {self.files[i]} ({e})", stacklevel=2)
        raise RuntimeError(f"none of the {len(self.files)} images could be read (first: {self.files[0]})")


class ImageFolderDataModule(pl.LightningDataModule):
    """Training batches (N, 3, size, size) in [-1, 1] from every jpg/png/webp under `image_dir`."""

    def __init__(self, image_dir: str | Path, size: int = 256, batch_size: int = 16, num_workers: int = 4,
                 flip: bool = True, seed: int = 0):
        super().__init__()
        check_int("size", size, at_least=1)
        check_int("batch_size", batch_size, at_least=1)
        check_int("num_workers", num_workers, at_least=0)
        check_bool("flip", flip)
        check_int("seed", seed, at_least=0)
        self.image_dir = Path(image_dir)
        self.size, self.batch_size, self.num_workers, self.flip = size, batch_size, num_workers, flip
        self.seed = seed
        self.dataset: ImageFolder | None = None
        self.check_source()

    def check_source(self) -> None:
        """Refuse a missing image folder at construction, before anything slow runs."""
        check_dir("image_dir", self.image_dir, what="folder of images")

    def setup(self, stage: str | None = None) -> None:
        files = list_images(self.image_dir) if self.image_dir.is_dir() else []
        if not files:
            raise MissingFileError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.image_dir.resolve()}: point "
                f"data.image_dir at a folder of images, or build one with `python -m data_modules.prepare`"
            )
        self._check_resolution(files)
        self.dataset = ImageFolder(files, self.size, self.flip)

    def _check_resolution(self, files: list[Path], sample: int = 256) -> None:
        """Refuse to train at a size most images do not have (upscaled paintings teach blur)."""
        small = []
        for path in files[:sample]:
            try:
                with open_image(path) as image:
                    if min(image.size) < self.size:
                        small.append((path, image.size))
            except READ_ERRORS:
                continue  # unreadable files are skipped (with a warning) when loaded
        checked = min(len(files), sample)
        if len(small) * 2 > checked:
            path, (w, h) = small[0]
            raise ValueError(
                f"data.size={self.size} but {len(small)} of {checked} images under {self.image_dir} are smaller "
                f"(e.g. {path.name} is {w}x{h}); set data.size (and so the model size) to what the images have, "
                "or prepare the data at that size"
            )

    def train_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("fit")
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = ResumableShuffle(len(self.dataset), self.batch_size, self.seed, rank, world)
        if trainer is not None:  # a resumed run continues after the batches its checkpoint had trained on
            # `processed`, not `completed`: a checkpoint saved in on_train_batch_end counts its batch as
            # trained but not yet completed (Lightning completes it only after its loops are restored)
            sampler.resume(trainer.fit_loop.epoch_loop.batch_progress.total.processed)
        return DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=sampler, drop_last=True,
            # its own generator: worker seeds must not draw from (and shift) the training's global RNG
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
