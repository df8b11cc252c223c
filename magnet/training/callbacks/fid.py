"""Metrics (FID by default) of the EMA generator during training, by name as in eval.py.

Contract with the LightningModule: it exposes `pl_module.g_ema`, a generator with `style_dim`, `size`,
`mapping(z, truncation_psi=...)` -> ws and `synthesis(ws, noise_mode=...)` -> images in [-1, 1], and
`pl_module.kimg`, a float of training images seen / 1000. The real images come from `data_dir`, else from
`trainer.datamodule.image_dir`.
A ModelCheckpoint with `monitor: val/fid10k_full, mode: min` then keeps the best generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from magnet.checks import check_dir
from magnet.errors import UserError, config_key
from magnet.metrics import MetricSettings, MetricSuite
from magnet.metrics.stats import real_images

from .base import EveryKimg, log_metrics


class FIDCallback(EveryKimg):
    """Every `every_kimg`, the metrics of `settings` for `pl_module.g_ema`, logged as `val/<name>`.

    With several processes each generates its share with its own seed and the features are gathered, so
    every rank logs the same figure. The real features are computed once per run (and cached on disk).
    """

    def __init__(self, every_kimg: float = 50.0, data_dir: str | None = None,
                 settings: MetricSettings | Mapping | None = None, networks: Mapping | None = None):
        super().__init__(every_kimg)
        check_dir("data_dir", data_dir, optional=True, what="folder of images")
        if settings is None or isinstance(settings, Mapping):
            with config_key("settings"):
                settings = MetricSettings(**(settings or {}))
        self.data_dir = data_dir
        self.suite = MetricSuite(settings, networks)
        self._folder, self._size = None, None  # set at fit start
        self._real = None

    def run(self, trainer, pl_module, kimg: float) -> None:
        metrics = {f"val/{name}": value for name, value in self.measure(trainer, pl_module).items()}
        # Straight to the loggers, once (a self.log from this hook is re-sent at later steps), and to
        # callback_metrics, where ModelCheckpoint and EarlyStopping look for `val/fid10k_full`.
        log_metrics(trainer, metrics, kimg)
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in metrics.items()})

    def on_fit_start(self, trainer, pl_module) -> None:
        """Find the real images now: a wrong folder fails at start-up, not at the first evaluation."""
        datamodule = getattr(trainer, "datamodule", None)
        folder = self.data_dir or getattr(datamodule, "image_dir", None)
        if folder is None:
            raise UserError("the FID callback has no real images: set callbacks.fid.data_dir, "
                            "or use a datamodule with an image_dir attribute")
        real_images(folder)
        self._folder = folder
        self._size = self.suite.settings.size or getattr(datamodule, "size", None) or pl_module.g_ema.size

    def real_features(self, trainer, pl_module) -> dict[str, torch.Tensor]:
        """Features of the real folder; rank 0 computes (and caches) them before the other ranks read them."""
        if self._real is None:
            def read():
                return self.suite.real_features(self._folder, self._size, pl_module.device, progress=False)

            if trainer.is_global_zero:
                self._real = read()
            trainer.strategy.barrier()
            if not trainer.is_global_zero:
                self._real = read()
        return self._real

    def measure(self, trainer, pl_module) -> dict[str, float]:
        """The figures of the EMA generator now; the same on every rank."""
        real = self.real_features(trainer, pl_module)
        num_gen, world = self.suite.num_gen, trainer.world_size
        generator = pl_module.g_ema
        was_training = generator.training
        generator.eval()
        try:
            seed = self.suite.settings.seed + trainer.global_rank
            fake = self.suite.fake_features(generator, math.ceil(num_gen / world), seed, progress=False)
        finally:
            generator.train(was_training)
        if world > 1:
            fake = {name: pl_module.all_gather(f.to(pl_module.device)).flatten(0, 1)[:num_gen].cpu()
                    for name, f in fake.items()}
        return self.suite.figures(real, fake)
