"""W&B as GAN runs are read: every key plotted against `train/kimg`, the kimg checkpoints as artifacts, a
resumed training continuing its run, offline unless there is a key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.loggers.utilities import _scan_checkpoints
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from magnet.training.callbacks.base import kimg_of
from magnet.training.callbacks.checkpoint import WANDB_RUN_ID, KimgCheckpoint


def wandb_mode(offline: bool | None) -> str:
    """`offline` as a W&B mode: true or false as given; null: online when WANDB_API_KEY is set, else offline."""
    if offline is None:
        offline = not os.environ.get("WANDB_API_KEY")
    return "offline" if offline else "online"


def recorded_run_id(ckpt_path: str | os.PathLike) -> str | None:
    """The W&B run that wrote a training checkpoint (None for a file from before W&B, or from elsewhere)."""
    from magnet.nn.checkpoint import read_checkpoint

    return read_checkpoint(ckpt_path).get(WANDB_RUN_ID)


class KimgWandbLogger(WandbLogger):
    """Lightning's WandbLogger with kimg as the x axis of every key, and `log_model` working with our
    KimgCheckpoint, offline too (W&B uploads the artifacts when the run is synced).

    `log_model`: false, true (the kimg files kept, logged when training ends) or "all" (each as it is
    written). The artifact of a run is `model-<run id>`; each version carries the aliases `<kimg tag>`
    (`kimg000200.000`) and `latest`, and `best` when it has the lowest `monitor` figure of the checkpoint
    callback so far. `id`: the run to continue; null with `resume_from` (a checkpoint): its run.
    """

    def __init__(self, offline: bool | None = None, log_model: bool | Literal["all"] = False,
                 id: str | None = None, resume_from: str | None = None, **kwargs):
        # Lightning refuses log_model when offline and sets WANDB_MODE for the whole process; a mode does neither
        super().__init__(offline=False, log_model=log_model, id=id, mode=wandb_mode(offline), **kwargs)
        self._resume_from = resume_from

    @property
    @rank_zero_experiment
    def experiment(self):
        import wandb

        if self._experiment is None and wandb.run is None and getattr(self, "_attach_id", None) is None:
            if self._wandb_init["id"] is None and self._resume_from is not None:
                self._wandb_init["id"] = recorded_run_id(self._resume_from)
            self._experiment = wandb.init(**self._wandb_init)
            self._experiment.define_metric("train/kimg")
            # step_sync: a row logged without train/kimg is placed at the last one logged
            self._experiment.define_metric("*", step_metric="train/kimg", step_sync=True)
        return super().experiment

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback) -> None:
        # the kimg files are the run's checkpoints (`best` marks the best of them); ModelCheckpoint's are not logged
        if not isinstance(checkpoint_callback, KimgCheckpoint) or not self._log_model:
            return
        if self._log_model == "all":
            self._scan_and_log_checkpoints(checkpoint_callback)
        else:  # logged by finalize() when training ends
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def _scan_and_log_checkpoints(self, checkpoint_callback: KimgCheckpoint) -> None:
        import wandb

        name = self._checkpoint_name or f"model-{self.experiment.id}"
        for mtime, path, score, _ in _scan_checkpoints(checkpoint_callback, self._logged_model_time):
            metadata = {"kimg": kimg_of(path), "score": score, "monitor": checkpoint_callback.monitor,
                        "original_filename": Path(path).name}
            artifact = wandb.Artifact(name=name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self.add_file_policy)
            best = ["best"] if path == checkpoint_callback.best_model_path else []
            self.experiment.log_artifact(artifact, aliases=[Path(path).stem, "latest", *best])
            self._logged_model_time[path] = mtime


def log_evaluation(loggers: list, figures: dict, kimg: float | None) -> None:
    """Evaluation figures as `eval/<name>`: to every logger (at the checkpoint's `kimg` when known) and, for
    W&B, into the run's summary, where the runs table shows them."""
    scalars = {f"eval/{name}": float(value) for name, value in figures.items()}
    for logger in loggers:
        logger.log_metrics(scalars if kimg is None else {**scalars, "train/kimg": kimg})
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(scalars)
