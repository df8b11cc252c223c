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
    """A strategy's history in its LatentSpace (which renders any of its latents), and the best one found."""

    space: object  # the LatentSpace searched
    generations: list[Generation] = field(default_factory=list)
    renders: int = 0  # at full size
    previews: int = 0  # cheaper renders that screened the initial population

    def _best(self) -> tuple[int, int]:
        """(generation, index) of the best score; the earliest on a tie."""
        best = max(range(len(self.generations)), key=lambda g: float(self.generations[g].scores.max()))
        return best, int(torch.argmax(self.generations[best].scores))

    @property
    def best_latent(self) -> torch.Tensor:
        g, i = self._best()
        return self.generations[g].latents[i]

    @property
    def best_score(self) -> float:
        g, i = self._best()
        return float(self.generations[g].scores[i])

    @property
    def best_scores(self) -> list[float]:
        """Best score so far after each generation."""
        return torch.stack([g.scores.max() for g in self.generations]).cummax(0).values.tolist()
