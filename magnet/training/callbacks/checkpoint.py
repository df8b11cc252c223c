"""Checkpoints every N kimg, `last.ckpt` always, and a final one when training ends."""

import shutil
from pathlib import Path

from pytorch_lightning.callbacks import Checkpoint

from magnet.atomic import atomic_path
from magnet.checks import check_int

from .base import EveryKimg, kimg_tag


class KimgCheckpoint(EveryKimg, Checkpoint):
    """Saves `kimg<N>.ckpt` every `every_kimg` and refreshes `last.ckpt`; keeps the `keep` newest kimg files.

    Writes go through the trainer's checkpoint IO (atomic with magnet's AtomicCheckpointIO), so a kill
    never leaves a half-written file, and `last.ckpt` is always the newest checkpoint. Being a `Checkpoint`,
    it stands in for Lightning's default per-epoch ModelCheckpoint.
    """

    def __init__(self, dirpath: str, every_kimg: float = 200.0, keep: int | None = 3):
        super().__init__(every_kimg)
        check_int("keep", keep, at_least=0, optional=True)
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
        last = self.dirpath / "last.ckpt"
        # last.ckpt first, so a kill between the two writes still leaves it the newest checkpoint;
        # weights_only=False: keep the optimizer states, or a resume would not be exact
        trainer.save_checkpoint(last, weights_only=False)
        self._saved_kimg = kimg
        if trainer.is_global_zero:
            # the kimg file is a copy of the one just written (serialised once), swapped in atomically
            with atomic_path(path) as tmp:
                shutil.copyfile(last, tmp)
            if self.keep is not None:
                for old in sorted(self.dirpath.glob("kimg*.ckpt"))[: -self.keep or None]:
                    old.unlink()
        return path
