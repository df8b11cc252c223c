"""Watch text guidance improve in training: every N kimg, search for fixed prompts on the EMA generator."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pytorch_lightning.loggers import WandbLogger

from magnet.checks import check_float, check_int
from magnet.errors import config_key
from magnet.precision import check_precision
from magnet.search import ClipObjective, GeneticSearch, LatentSpace, auto_levels, parse_prompt, run_search
from magnet.search.evaluate import Screen
from magnet.search.paint import slug
from magnet.search.space import check_space

from .base import EveryKimg, log_metrics, save_and_log_image


class SearchPreview(EveryKimg):
    """Runs a small search per prompt on `pl_module.g_ema` every `every_kimg`; logs the paintings.

    `precision` and `screen` (the settings of a magnet.search.Screen) are the search's (magnet.search.Evaluator);
    the logged painting is float32.

    `strategy` is any ask/tell Strategy (default: a small GA). Paintings go to `<run>/search_preview/<prompt>/`
    and to W&B / TensorBoard; every logger gets the scores, and W&B a table `search/preview` of (kimg, prompt,
    seed, score, image) that grows at every preview, to compare prompts across training. Only global rank 0
    searches; the search has its own RNG, so training is not perturbed.
    """

    def __init__(
        self,
        prompts: list[str],
        every_kimg: float = 100.0,
        clip: Mapping | None = None,
        strategy=None,
        space: str = "z",
        truncation_psi: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        precision: str = "fp32",
        screen: Mapping | None = None,
    ):
        super().__init__(every_kimg)
        self.prompts = [str(p) for p in prompts]
        for prompt in self.prompts:  # a bad setting fails at start-up, not hours into training
            parse_prompt(prompt)
        check_space(space)
        check_float("truncation_psi", truncation_psi)
        check_int("seed", seed, at_least=0)
        check_int("batch_size", batch_size, at_least=1)
        check_precision("precision", precision)
        with config_key("screen"):
            self.screen = Screen(**(screen or {"keep": 0}))
        self.clip = dict(clip or {"model_name": "ViT-B-32", "pretrained": "openai"})
        from magnet.clip import check_clip

        with config_key("clip"):
            check_clip(self.clip.get("model_name"), self.clip.get("pretrained"))
        self.space, self.truncation_psi, self.seed = space, float(truncation_psi), int(seed)
        self.batch_size, self.precision = batch_size, precision
        self.strategy = strategy if strategy is not None else GeneticSearch(num_initial_samples=32, generations=3)
        self._objectives = None
        self._table = None  # the W&B table, created at the first preview logged to W&B

    def run(self, trainer, pl_module, kimg: float) -> None:
        if trainer.is_global_zero:
            self.preview(trainer, pl_module, kimg)

    def objectives(self, device) -> list[ClipObjective]:
        """CLIP and the prompts' targets, loaded at the first preview (so start-up stays fast)."""
        if self._objectives is None:
            from magnet.clip import load_clip

            clip = load_clip(self.clip["model_name"], self.clip.get("pretrained"), device=device)
            self._objectives = [ClipObjective(clip, parse_prompt(p)) for p in self.prompts]
        return self._objectives

    def search(self, generator, device) -> list[tuple[np.ndarray, float]]:
        """(auto-levelled painting, score) per prompt."""
        results = []
        was_training = generator.training
        generator.eval()
        try:
            space = LatentSpace(generator, self.space, self.truncation_psi)
            for objective in self.objectives(device):
                result = run_search(self.strategy, space, objective, self.seed, self.batch_size,
                                    precision=self.precision, screen=self.screen)
                results.append((auto_levels(space.render_one(result.best_latent)), result.best_score))
        finally:
            generator.train(was_training)
        return results

    def preview(self, trainer, pl_module, kimg: float) -> None:
        results = self.search(pl_module.g_ema, pl_module.device)
        log_metrics(trainer, {f"search/{slug(p)}": score for p, (_, score) in zip(self.prompts, results, strict=True)},
                    kimg)
        for prompt, (image, score) in zip(self.prompts, results, strict=True):
            save_and_log_image(trainer, f"search_preview/{slug(prompt)}", f"search/{slug(prompt)}/painting", image,
                               f"{prompt} ({score:+.3f})", kimg)
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if wandb_loggers:
            table = self.table(kimg, results)
            for logger in wandb_loggers:
                logger.log_metrics({"search/preview": table, "train/kimg": kimg}, trainer.global_step)

    def table(self, kimg: float, results: list[tuple[np.ndarray, float]]):
        """The W&B table with this preview's rows added; incremental, so each log sends only the new rows."""
        import wandb

        if self._table is None:
            self._table = wandb.Table(columns=["kimg", "prompt", "seed", "score", "image"], log_mode="INCREMENTAL")
        for prompt, (image, score) in zip(self.prompts, results, strict=True):
            self._table.add_data(kimg, prompt, self.seed, score, wandb.Image(image, caption=prompt))
        return self._table
