"""Checkpoints every N kimg, `last.ckpt` always, and a final one when training ends."""

import math
import shutil
from pathlib import Path

from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.loggers import WandbLogger

from magnet.atomic import atomic_path
from magnet.checks import check_int

from .base import EveryKimg, kimg_tag

WANDB_RUN_ID = "wandb_run_id"  # checkpoint key: the W&B run that wrote it, which a resume continues


class KimgCheckpoint(EveryKimg, Checkpoint):
    """Saves `kimg<N>.ckpt` every `every_kimg` and refreshes `last.ckpt`; keeps the `keep` newest kimg files
    (and the best by `monitor`, lower is better, when that metric is logged).

    Writes go through the trainer's checkpoint IO (atomic with magnet's AtomicCheckpointIO), so a kill
    never leaves a half-written file, and `last.ckpt` is always the newest checkpoint. Being a `Checkpoint`,
    it stands in for Lightning's default per-epoch ModelCheckpoint; like it, it tells the loggers after each
    save (W&B's `log_model`) and offers ModelCheckpoint's attributes: `last_model_path`, `current_score`,
    `best_model_path`, `best_model_score`, `best_k_models` (the kimg files kept, with their scores).
    """

    def __init__(self, dirpath: str, every_kimg: float = 200.0, keep: int | None = 3, monitor: str | None = None):
        super().__init__(every_kimg, at_end=True)
        check_int("keep", keep, at_least=0, optional=True)
        self.dirpath, self.keep, self.monitor = Path(dirpath), keep, monitor
        self.best_k_models: dict[str, float | None] = {}
        self.last_model_path, self.current_score = "", None
        self.best_model_path, self.best_model_score = "", None

    @property
    def save_top_k(self) -> int:
        """ModelCheckpoint's name for how many files are kept (-1: all)."""
        return -1 if self.keep is None else self.keep

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_model_path": self.best_model_path,
                "best_model_score": self.best_model_score}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.best_model_path = state_dict.get("best_model_path", "")
        self.best_model_score = state_dict.get("best_model_score")

    def run(self, trainer, pl_module, kimg: float) -> None:
        self.save(trainer, kimg)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Every checkpoint of the run (ours and ModelCheckpoint's) names its W&B run."""
        run_id = next((logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)
        if run_id is not None:
            checkpoint[WANDB_RUN_ID] = run_id

    def save(self, trainer, kimg: float) -> Path:
        path = self.dirpath / f"{kimg_tag(kimg)}.ckpt"
        self._score(str(path), trainer)  # before the save, so the checkpoint's own state knows the best
        last = self.dirpath / "last.ckpt"
        # last.ckpt first, so a kill between the two writes still leaves it the newest checkpoint;
        # weights_only=False: keep the optimizer states, or a resume would not be exact
        trainer.save_checkpoint(last, weights_only=False)
        if trainer.is_global_zero:
            # the kimg file is a copy of the one just written (serialised once), swapped in atomically
            with atomic_path(path) as tmp:
                shutil.copyfile(last, tmp)
            self._prune()
        for logger in trainer.loggers:
            logger.after_save_checkpoint(self)
        return path

    def _score(self, path: str, trainer) -> None:
        """Record the kimg file about to be written with its `monitor` figure, and whether it is the best."""
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        score = float(value) if value is not None and math.isfinite(float(value)) else None
        self.last_model_path, self.current_score = path, score
        self.best_k_models[path] = score
        if score is not None and (self.best_model_score is None or score < self.best_model_score):
            self.best_model_path, self.best_model_score = path, score

    def _prune(self) -> None:
        """Remove all but the `keep` newest kimg files, never the best one."""
        if self.keep is None:
            return
        for old in sorted(self.dirpath.glob("kimg*.ckpt"))[: -self.keep or None]:
            if str(old) != self.best_model_path:
                old.unlink()
                self.best_k_models.pop(str(old), None)
