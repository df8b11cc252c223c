"""Checkpoints every N kimg, `last.ckpt` always, and a final one when training ends."""

import os
import shutil
from pathlib import Path

from pytorch_lightning.callbacks import Checkpoint

from .base import EveryKimg, kimg_tag


class KimgCheckpoint(EveryKimg, Checkpoint):
    """Saves `kimg<N>.ckpt` every `every_kimg` and refreshes `last.ckpt`; keeps the `keep` newest kimg files.

    Writes go through the trainer's checkpoint IO (atomic with magnet's AtomicCheckpointIO), so a kill
    mid-write leaves the previous `last.ckpt` intact. Being a `Checkpoint`, it stands in for Lightning's
    default per-epoch ModelCheckpoint.
    """

    def __init__(self, dirpath: str, every_kimg: float = 200.0, keep: int | None = 3):
        super().__init__(every_kimg)
        self.dirpath, self.keep = Path(dirpath), keep
        self._saved_kimg: float | None = None

    def run(self, trainer, pl_module, kimg: float) -> None:
        self.save(trainer, kimg)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.interrupted:
            self.save(trainer, float(pl_module.kimg))

    def save(self, trainer, kimg: float) -> Path:
        path = self.dirpath / f"{kimg_tag(kimg)}.ckpt"
        if kimg == self._saved_kimg:  # the end of training fell on a scheduled checkpoint
            return path
        # weights_only=False: keep the optimizer states, or a resume would not be exact
        trainer.save_checkpoint(path, weights_only=False)
        self._saved_kimg = kimg
        if trainer.is_global_zero:
            # last.ckpt is a copy of the file just written (serialised once), swapped in atomically
            tmp = self.dirpath / ".last.ckpt.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, self.dirpath / "last.ckpt")
            if self.keep is not None:
                for old in sorted(self.dirpath.glob("kimg*.ckpt"))[: -self.keep or None]:
                    old.unlink()
        return path
