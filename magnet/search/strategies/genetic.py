"""MAGnet's genetic algorithm: elitist selection, crossover of every ordered pair of parents, mutation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magnet.checks import check_choice, check_float, check_int
from magnet.errors import UserError
from magnet.search.result import Generation
from magnet.search.strategies.base import STRATEGIES, Strategy

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


def breed(parents, crossover: str, recombination_amount: float, mutation_amount: float, scale, rng):
    """One child per ordered pair (i, j), i == j included, in MAGnet's order: for j, for i: P[i] x P[j]."""
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


@STRATEGIES.register("genetic")
@dataclass
class GeneticSearch(Strategy):
    """MAGnet's defaults: 200 samples, keep 4, 16 children per generation, 5 generations (280 renders).

    `choose_parents(indices)` replaces the elitist selection of the next generation with a caller's choice.
    """

    num_initial_samples: int = 200
    num_parents: int = 4          # kept each generation; children from every ordered pair, i == j included
    generations: int = 5
    crossover: str = "linear"     # linear: (1 - r) * a + r * b | point: one-point crossover
    recombination_amount: float = 0.333  # r of the linear crossover
    mutation_amount: float = 0.25  # std of the Gaussian mutation, in units of the space's spread

    def __post_init__(self):
        check_int("num_initial_samples", self.num_initial_samples, at_least=1)
        check_int("num_parents", self.num_parents, at_least=1, at_most=self.num_initial_samples)
        check_int("generations", self.generations, at_least=0)
        check_choice("crossover", self.crossover, CROSSOVERS)
        check_float("recombination_amount", self.recombination_amount)
        check_float("mutation_amount", self.mutation_amount, at_least=0)

    def start(self, space, rng, around=None, spread=0.5):
        self._chosen: torch.Tensor | None = None
        self._parents: torch.Tensor | None = None  # indices into the last generation, of the pending ask
        return super().start(space, rng, around, spread)

    def choose_parents(self, indices) -> None:
        """Make these candidates of the last generation the parents of the next one (before `ask()`)."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        size = len(self.history[-1].scores) if self.history else 0
        if self._asked is not None or not len(indices) or not all(0 <= int(i) < size for i in indices):
            raise UserError(f"choose 1 or more parents among the {size} candidates of the last generation, "
                            "before the next ask()")
        self._chosen = indices

    def propose(self) -> torch.Tensor:
        last = self.history[-1]
        self._parents = self._chosen if self._chosen is not None else select_elite(last.scores, self.num_parents)
        self._chosen = None
        scale = self.space.noise_scale(self.unit_sample())
        children = breed(last.latents[self._parents], self.crossover, self.recombination_amount,
                         self.mutation_amount, scale, self.rng)
        return self.space.project(children)

    def record(self, latents, scores, thumbnails) -> Generation:
        if not self.history:
            return Generation(latents, scores, thumbnails)
        last, parents = self.history[-1], self._parents
        return Generation(torch.cat([last.latents[parents], latents]), torch.cat([last.scores[parents], scores]),
                          torch.cat([last.thumbnails[parents], thumbnails]), num_parents=len(parents))

    def extra_state(self) -> dict:
        return {"chosen": self._chosen, "parents": self._parents}

    def load_extra_state(self, state: dict) -> None:
        self._chosen, self._parents = state["chosen"], state["parents"]
