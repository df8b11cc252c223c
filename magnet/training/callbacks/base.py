"""What the kimg-driven callbacks share: a schedule in images seen, and image logging to any logger."""

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from magnet.checks import check_float
from magnet.training.rng import preserved_rng


def kimg_tag(kimg: float) -> str:
    """File-name tag of a training time: kimg000012.500 (sorts in time order)."""
    return f"kimg{kimg:010.3f}"


def kimg_of(path: str | Path) -> float:
    """The training time a file named by `kimg_tag` was written at: .../kimg000012.500.ckpt -> 12.5."""
    return float(Path(path).stem.removeprefix("kimg"))


class EveryKimg(pl.Callback):
    """Calls `self.run(trainer, pl_module, kimg)` each time training passes a multiple of `every_kimg`.

    The schedule is counted in whole images (`pl_module.kimg` * 1000), so no multiple is skipped by float
    rounding; the next due point is callback state, so a resumed run continues the schedule instead of
    restarting it. `run` cannot move the training's random streams (it may draw noise, build networks).
    `at_end`: also when training ends (not when it is interrupted), unless `run` has just run at that
    image count; a run bounded by `trainer.max_time` rarely ends on a multiple of `every_kimg`.
    """

    def __init__(self, every_kimg: float, at_start: bool = False, at_end: bool = False):
        check_float("every_kimg", every_kimg, at_least=0.001)  # thousands of training images: one at least
        self.every_nimg = round(every_kimg * 1000)
        self.next_nimg = 0 if at_start else self.every_nimg
        self.at_end = at_end
        self.last_nimg: int | None = None  # images seen at the last `run`

    def state_dict(self) -> dict:
        return {"next_kimg": self.next_nimg / 1000}

    def load_state_dict(self, state_dict: dict) -> None:
        self.next_nimg = round(state_dict["next_kimg"] * 1000)

    def on_train_start(self, trainer, pl_module) -> None:
        if self.next_nimg == 0 and _nimg(pl_module) == 0:
            self._due(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if _nimg(pl_module) >= self.next_nimg:
            self._due(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.at_end and not trainer.interrupted and _nimg(pl_module) != self.last_nimg:
            self._due(trainer, pl_module)

    def _due(self, trainer, pl_module) -> None:
        nimg = _nimg(pl_module)
        self.next_nimg = (nimg // self.every_nimg + 1) * self.every_nimg
        self.last_nimg = nimg
        with preserved_rng():
            self.run(trainer, pl_module, nimg / 1000)

    def run(self, trainer, pl_module, kimg: float) -> None:
        raise NotImplementedError


def _nimg(pl_module) -> int:
    return round(float(pl_module.kimg) * 1000)


def log_metrics(trainer, metrics: dict, kimg: float) -> None:
    """Scalars to every logger, with the training time `train/kimg` in the same row: W&B plots every key
    against it, and a CSV row says when it was measured."""
    for logger in trainer.loggers:
        logger.log_metrics({**metrics, "train/kimg": kimg}, step=trainer.global_step)


def save_and_log_image(trainer, folder: str, key: str, image: np.ndarray, caption: str, kimg: float) -> Path:
    """An HWC uint8 image as `<run>/<folder>/<kimg tag>.png`, and to the loggers that show images (W&B,
    TensorBoard). Called on every rank; only rank 0 writes."""
    path = Path(trainer.default_root_dir) / folder / f"{kimg_tag(kimg)}.png"
    if not trainer.is_global_zero:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            logger.log_metrics({key: wandb.Image(image, caption=caption), "train/kimg": kimg}, trainer.global_step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoardLogger
            logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")
    return path
