"""The record of a search: every generation's candidates, scores and thumbnails, and the best latent."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Generation:
    """Candidates scored together; the first `num_parents` are the elites carried over (not re-rendered)."""

    latents: torch.Tensor  # (N, *latent_shape) float32, CPU
    scores: torch.Tensor  # (N,) float32, CPU
    thumbnails: torch.Tensor  # (N, 3, t, t) uint8, CPU
    num_parents: int = 0


@dataclass
class SearchResult:
    """What a strategy returns: its history and the best latent it found in `space`."""

    space: str
    truncation_psi: float
    generations: list[Generation] = field(default_factory=list)
    renders: int = 0

    @property
    def best_index(self) -> int:
        return int(torch.argmax(self.generations[-1].scores))

    @property
    def best_latent(self) -> torch.Tensor:
        return self.generations[-1].latents[self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.generations[-1].scores[self.best_index])

    @property
    def best_scores(self) -> list[float]:
        """Best score so far after each generation."""
        return torch.stack([g.scores.max() for g in self.generations]).cummax(0).values.tolist()
