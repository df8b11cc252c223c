"""Watch text guidance improve in training: every N kimg, search for fixed prompts on the EMA generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image

from magnet.search import ClipObjective, GeneticSearch, auto_levels, parse_prompt, render_latent, run_search
from magnet.search.paint import slug


class SearchPreview(pl.Callback):
    """Runs a small genetic search per prompt on `pl_module.g_ema` every `every_kimg`; logs the paintings.

    Wandb and TensorBoard loggers get images; loggers with a log_dir (CSV) get PNG files there; every logger
    gets the scores. Only global rank 0 searches; the search has its own RNG, so training is not perturbed.
    """

    def __init__(
        self,
        prompts: list[str],
        every_kimg: float = 100.0,
        clip_model_name: str = "ViT-B-32",
        clip_pretrained: str | None = "openai",
        space: str = "z",
        truncation_psi: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        search: dict | None = None,
    ):
        super().__init__()
        self.prompts = [str(p) for p in prompts]
        for prompt in self.prompts:  # a bad prompt fails at start-up, not hours into training
            parse_prompt(prompt)
        self.every_kimg = float(every_kimg)
        self.clip_model_name, self.clip_pretrained = clip_model_name, clip_pretrained
        self.space, self.truncation_psi, self.seed = space, float(truncation_psi), int(seed)
        self.batch_size = batch_size
        self.strategy = GeneticSearch(**(search or {}))
        self.next_kimg = self.every_kimg
        self._objectives = None

    def state_dict(self) -> dict:
        return {"next_kimg": self.next_kimg}

    def load_state_dict(self, state_dict: dict) -> None:
        self.next_kimg = state_dict["next_kimg"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        kimg = float(pl_module.kimg)
        if kimg < self.next_kimg:
            return
        self.next_kimg = (kimg // self.every_kimg + 1) * self.every_kimg
        if trainer.is_global_zero:
            self.preview(trainer, pl_module, kimg)

    def objectives(self, device) -> list[ClipObjective]:
        """CLIP and the prompts' targets, loaded at the first preview (so start-up stays fast)."""
        if self._objectives is None:
            from magnet.clip import load_clip

            clip = load_clip(self.clip_model_name, self.clip_pretrained, device=device)
            self._objectives = [ClipObjective(clip, parse_prompt(p)) for p in self.prompts]
        return self._objectives

    def search(self, generator, device) -> list[tuple[np.ndarray, float]]:
        """(auto-levelled painting, score) per prompt."""
        results = []
        was_training = generator.training
        generator.eval()
        try:
            for objective in self.objectives(device):
                result = run_search(
                    generator,
                    objective,
                    self.strategy,
                    self.space,
                    self.truncation_psi,
                    self.seed,
                    self.batch_size,
                )
                image = render_latent(generator, self.space, self.truncation_psi, result.best_latent)
                results.append((auto_levels(image), result.best_score))
        finally:
            generator.train(was_training)
        return results

    def preview(self, trainer, pl_module, kimg: float) -> None:
        results = self.search(pl_module.g_ema, pl_module.device)
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics(
                {f"search/{slug(p)}": score for p, (_, score) in zip(self.prompts, results, strict=True)},
                step,
            )
            for prompt, (image, score) in zip(self.prompts, results, strict=True):
                self._log_image(
                    logger, f"search/{slug(prompt)}", image, f"{prompt} ({score:+.3f})", kimg, step
                )

    @staticmethod
    def _log_image(logger, key: str, image: np.ndarray, caption: str, kimg: float, step: int) -> None:
        if hasattr(logger, "log_image"):  # WandbLogger
            logger.log_image(key=key, images=[image], step=step, caption=[caption])
        elif hasattr(logger.experiment, "add_image"):  # TensorBoardLogger
            logger.experiment.add_image(key, image, step, dataformats="HWC")
        elif getattr(logger, "log_dir", None):  # CSVLogger and the like
            folder = Path(logger.log_dir) / "search_preview"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"kimg{kimg:08.1f}_{key.split('/')[-1]}.png")
