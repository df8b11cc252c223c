"""MAGnet's genetic algorithm: elitist selection, crossover of every ordered pair of parents, mutation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magnet.search.result import Generation, SearchResult

CROSSOVERS = ("linear", "point")


def linear_crossover(a: torch.Tensor, b: torch.Tensor, r: float) -> torch.Tensor:
    """MAGnet's recombination: (1 - r) * a + r * b."""
    return (1 - r) * a + r * b


def point_crossover(a: torch.Tensor, b: torch.Tensor, cut: int) -> torch.Tensor:
    """One-point crossover along the latent's first axis: a's head up to `cut`, then b's tail.

    In z and W that axis is the vector's entries; in W+ it is the layer axis, so a cut is style mixing.
    """
    return torch.cat([a[:cut], b[cut:]])


def mutate(x: torch.Tensor, amount: float, scale: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of std `amount * scale` (scale: the space's unit, scalar or per dimension)."""
    return x + torch.randn(x.shape, generator=rng) * amount * scale


def select_elite(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k best scores, best first; on a tie the earlier candidate (a parent) wins."""
    return torch.argsort(scores, descending=True, stable=True)[:k]


def breed(
    parents: torch.Tensor,
    crossover: str,
    recombination_amount: float,
    mutation_amount: float,
    scale: torch.Tensor,
    rng: torch.Generator,
) -> torch.Tensor:
    """One child per ordered pair (i, j), i == j included, in MAGnet's order: for j, for i: P[i] x P[j]."""
    if crossover not in CROSSOVERS:
        raise ValueError(f"crossover={crossover!r} is not one of {CROSSOVERS}")
    children = []
    for j in range(len(parents)):
        for i in range(len(parents)):
            if crossover == "linear":
                child = linear_crossover(parents[i], parents[j], recombination_amount)
            else:
                cut = int(torch.randint(1, parents.shape[1], (), generator=rng))
                child = point_crossover(parents[i], parents[j], cut)
            children.append(mutate(child, mutation_amount, scale, rng))
    return torch.stack(children)


@dataclass
class GeneticSearch:
    """MAGnet's defaults: 200 samples, keep 4, 16 children per generation, 5 generations (300 candidates)."""

    num_initial_samples: int = 200
    num_parents: int = 4
    generations: int = 5
    crossover: str = "linear"
    recombination_amount: float = 0.333
    mutation_amount: float = 0.25

    def __post_init__(self):
        if self.crossover not in CROSSOVERS:
            raise ValueError(f"crossover={self.crossover!r} is not one of {CROSSOVERS}; use linear or point")
        if not 1 <= self.num_parents <= self.num_initial_samples:
            raise ValueError(
                f"num_parents={self.num_parents} must be between 1 and num_initial_samples="
                f"{self.num_initial_samples}"
            )

    def run(self, evaluate, space, rng: torch.Generator) -> SearchResult:
        """Search with `evaluate(latents, label) -> (scores, thumbnails)`; parents keep their scores."""
        result = SearchResult(space.space, space.truncation_psi)
        latents = space.sample(self.num_initial_samples, rng)
        scores, thumbs = evaluate(latents, "initial")
        result.generations.append(Generation(latents, scores, thumbs))
        scale = space.noise_scale(latents)
        for g in range(1, self.generations + 1):
            elite = select_elite(scores, self.num_parents)
            parents, parent_scores, parent_thumbs = latents[elite], scores[elite], thumbs[elite]
            children = space.project(
                breed(parents, self.crossover, self.recombination_amount, self.mutation_amount, scale, rng)
            )
            child_scores, child_thumbs = evaluate(children, f"generation {g}")
            latents = torch.cat([parents, children])
            scores = torch.cat([parent_scores, child_scores])
            thumbs = torch.cat([parent_thumbs, child_thumbs])
            result.generations.append(Generation(latents, scores, thumbs, num_parents=self.num_parents))
        return result
