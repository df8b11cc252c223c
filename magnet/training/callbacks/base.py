"""What the kimg-driven callbacks share: a schedule in images seen, and image logging to any logger."""

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image


def kimg_tag(kimg: float) -> str:
    """File-name tag of a training time: kimg000012.500 (sorts in time order)."""
    return f"kimg{kimg:010.3f}"


class EveryKimg(pl.Callback):
    """Calls `self.run(trainer, pl_module, kimg)` each time training passes a multiple of `every_kimg`.

    The module counts images in `pl_module.kimg`; the next due point is callback state, so a resumed run
    continues the schedule instead of restarting it.
    """

    def __init__(self, every_kimg: float, at_start: bool = False):
        if every_kimg <= 0:
            raise ValueError(f"every_kimg={every_kimg} must be positive (thousands of training images)")
        self.every_kimg = float(every_kimg)
        self.next_kimg = 0.0 if at_start else self.every_kimg

    def state_dict(self) -> dict:
        return {"next_kimg": self.next_kimg}

    def load_state_dict(self, state_dict: dict) -> None:
        self.next_kimg = state_dict["next_kimg"]

    def on_train_start(self, trainer, pl_module) -> None:
        if self.next_kimg == 0.0 and float(pl_module.kimg) == 0.0:
            self._due(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if float(pl_module.kimg) >= self.next_kimg:
            self._due(trainer, pl_module)

    def _due(self, trainer, pl_module) -> None:
        kimg = float(pl_module.kimg)
        self.next_kimg = (kimg // self.every_kimg + 1) * self.every_kimg
        self.run(trainer, pl_module, kimg)

    def run(self, trainer, pl_module, kimg: float) -> None:
        raise NotImplementedError


def save_and_log_image(trainer, folder: str, key: str, image: np.ndarray, caption: str, kimg: float) -> Path:
    """An HWC uint8 image as `<run>/<folder>/<kimg tag>.png`, and to the loggers that show images (W&B,
    TensorBoard). Called on every rank; only rank 0 writes."""
    path = Path(trainer.default_root_dir) / folder / f"{kimg_tag(kimg)}.png"
    if not trainer.is_global_zero:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger
            logger.log_image(key=key, images=[image], step=trainer.global_step, caption=[caption])
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoardLogger
            logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")
    return path
