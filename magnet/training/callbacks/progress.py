"""Training speed as GAN people read it (NVlabs prints sec/kimg each tick): kimg of total, seconds per kimg,
images per second and the time left, in the log, the loggers and the progress bar."""

import logging
import time

import torch
from pytorch_lightning.callbacks import RichProgressBar

from .base import EveryKimg, log_metrics

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """A time left in words: 2d 03h 10m, 5h 02m, 12m 30s, 40s."""
    seconds = round(seconds)
    days, hours, minutes, secs = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60, seconds % 60
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def progress_text(kimg: float, total_kimg: float | None, sec_per_kimg: float | None) -> dict[str, str]:
    """What the bar and the log show: kimg of total, and once measured sec/kimg, img/s and the ETA."""
    digits = 1 if (total_kimg or kimg) >= 10 else 3
    shown = {"kimg": f"{kimg:.{digits}f}" + (f"/{total_kimg:g}" if total_kimg else "")}
    if sec_per_kimg:
        shown["sec/kimg"] = f"{sec_per_kimg:.2f}"
        shown["img/s"] = f"{1000 / sec_per_kimg:.1f}"
        if total_kimg:
            shown["eta"] = duration(max(total_kimg - kimg, 0.0) * sec_per_kimg)
    return shown


def _total_kimg(pl_module) -> float | None:
    return getattr(getattr(pl_module, "hparams", None), "total_kimg", None)


class Throughput(EveryKimg):
    """Every `every_kimg` (a tick), the speed since the previous tick: logged to every logger as
    `perf/sec_per_kimg` and `perf/img_per_sec` (with `train/kimg`), kept in `trainer.callback_metrics` for the
    progress bar, and printed as one log line with kimg of total and the ETA. Wall time, all callbacks included.
    """

    def __init__(self, every_kimg: float = 4.0):
        super().__init__(every_kimg)
        self._tick: tuple[float, float] | None = None  # (time, kimg) of the previous tick

    def on_train_start(self, trainer, pl_module) -> None:
        self._tick = (time.perf_counter(), float(pl_module.kimg))  # a resumed run measures from its start

    def run(self, trainer, pl_module, kimg: float) -> None:
        now, (start, start_kimg) = time.perf_counter(), self._tick
        self._tick = (now, kimg)
        if kimg <= start_kimg:
            return
        sec_per_kimg = (now - start) / (kimg - start_kimg)
        metrics = {"perf/sec_per_kimg": sec_per_kimg, "perf/img_per_sec": 1000 / sec_per_kimg}
        log_metrics(trainer, metrics, kimg)
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in metrics.items()})
        if trainer.is_global_zero:
            shown = progress_text(kimg, _total_kimg(pl_module), sec_per_kimg)
            log.info("  ".join(f"{name} {value}" for name, value in shown.items()))


class KimgProgressBar(RichProgressBar):
    """Rich's bar showing kimg of `total_kimg`, and sec/kimg, img/s and the ETA of the latest Throughput tick."""

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("train/kimg", None)  # shown as kimg of total
        sec_per_kimg = trainer.callback_metrics.get("perf/sec_per_kimg")
        shown = progress_text(float(pl_module.kimg), _total_kimg(pl_module),
                              None if sec_per_kimg is None else float(sec_per_kimg))
        return {**shown, **metrics}
