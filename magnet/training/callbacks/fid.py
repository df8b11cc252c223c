"""FID (and optionally KID and the Frechet distance in CLIP space) of the EMA generator during training.

Contract with the LightningModule: it exposes `pl_module.g_ema`, a generator with `style_dim`, `size` and
`g_ema(z, truncation_psi=..., noise_mode=...)` -> images in [-1, 1], and `pl_module.kimg`, a float of
training images seen / 1000. The real images come from `data_dir`, else from `trainer.datamodule.image_dir`.
A ModelCheckpoint with `monitor: val/fid, mode: min` then keeps the best generator.
"""

from __future__ import annotations

import math

import torch

from magnet.metrics.fid import distances, generated_features
from magnet.metrics.inception import InceptionFeatures
from magnet.metrics.stats import folder_features, list_images

from .base import EveryKimg


class FIDCallback(EveryKimg):
    """Every `every_kimg`, FID of `num_gen` images from `pl_module.g_ema`, logged as `val/fid`.

    With several processes each generates its share with its own seed and the features are gathered, so
    every rank logs the same figure. The real features are computed once per run (and cached on disk).
    """

    def __init__(
        self,
        every_kimg: float = 50.0,
        num_gen: int = 10000,
        data_dir: str | None = None,
        size: int | None = None,
        kid: bool = False,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        clip_model_name: str | None = None,
        clip_pretrained: str | None = "openai",
        batch_size: int = 32,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
        seed: int = 0,
        feature_extractor_weights_path: str | None = None,
        cache_dir: str | None = "~/.cache/magnet/fid_stats",
    ):
        super().__init__(every_kimg)
        if num_gen < 2:
            raise ValueError(f"num_gen={num_gen}: FID needs at least 2 generated images.")
        self.num_gen = int(num_gen)
        self.data_dir, self.size = data_dir, size
        self.kid, self.kid_subsets, self.kid_subset_size = kid, kid_subsets, kid_subset_size
        self.clip_model_name, self.clip_pretrained = clip_model_name, clip_pretrained
        self.batch_size, self.truncation_psi, self.noise_mode = batch_size, truncation_psi, noise_mode
        self.seed = seed
        self.weights_path, self.cache_dir = feature_extractor_weights_path, cache_dir
        self._networks = None
        self._folder, self._size = None, None  # set at fit start
        self._real = None

    def run(self, trainer, pl_module, kimg: float) -> None:
        metrics = {f"val/{name}": value for name, value in self.measure(trainer, pl_module).items()}
        # Straight to the loggers, once (a self.log from this hook is re-sent at later steps), and to
        # callback_metrics, where ModelCheckpoint and EarlyStopping look for `val/fid`.
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in metrics.items()})

    def networks(self, device) -> list:
        """Inception, plus CLIP when `clip_model_name` is set; loaded at the first evaluation."""
        if self._networks is None:
            self._networks = [InceptionFeatures(self.weights_path)]
            if self.clip_model_name is not None:
                from magnet.metrics.clip_fd import clip_features

                self._networks.append(clip_features(self.clip_model_name, self.clip_pretrained, device))
        self._networks[0].to(device)
        return self._networks

    def on_fit_start(self, trainer, pl_module) -> None:
        """Find the real images now: a wrong folder fails at start-up, not at the first evaluation."""
        datamodule = getattr(trainer, "datamodule", None)
        folder = self.data_dir or getattr(datamodule, "image_dir", None)
        if folder is None:
            raise ValueError(
                "FIDCallback has no real images: set callbacks.fid.data_dir, "
                "or use a datamodule with an image_dir attribute."
            )
        list_images(folder)
        self._folder = folder
        self._size = self.size or getattr(datamodule, "size", None) or pl_module.g_ema.size

    def real_features(self, trainer, pl_module, networks) -> list[torch.Tensor]:
        """Features of the real folder; rank 0 computes (and caches) them before the other ranks read them."""

        def read():
            return [
                folder_features(
                    self._folder,
                    net,
                    self._size,
                    self.cache_dir,
                    self.batch_size,
                    device=pl_module.device,
                    progress=False,
                )
                for net in networks
            ]

        if self._real is None:
            if trainer.is_global_zero:
                self._real = read()
            trainer.strategy.barrier()
            if not trainer.is_global_zero:
                self._real = read()
        return self._real

    def measure(self, trainer, pl_module) -> dict[str, float]:
        """FID (+ KID, CLIP FD) of the EMA generator now; the same figures on every rank."""
        networks = self.networks(pl_module.device)
        real = self.real_features(trainer, pl_module, networks)
        world, rank = trainer.world_size, trainer.global_rank
        per_rank = math.ceil(self.num_gen / world)
        generator = pl_module.g_ema
        was_training = generator.training
        generator.eval()
        try:
            fake = generated_features(
                generator,
                networks,
                per_rank,
                self.batch_size,
                self.truncation_psi,
                self.noise_mode,
                seed=self.seed + rank,
                progress=False,
            )
        finally:
            generator.train(was_training)
        if world > 1:
            fake = [pl_module.all_gather(f.to(pl_module.device)).flatten(0, 1)[: self.num_gen].cpu() for f in fake]
        return distances(
            real,
            fake,
            self.kid,
            self.kid_subsets,
            self.kid_subset_size,
            clip=self.clip_model_name is not None,
        )
