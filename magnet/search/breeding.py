"""Breeding by hand: the next generation from parents a person picks, blended with CLIP's own choice.

`clip_weight` shares the children out: 0 gives them all to the person's parents (Picbreeder: the person is the
fitness), 1 all to CLIP's best `clip_parents` (MAGnet's genetic step), in between a proportion of each.
Crossover and mutation are the genetic algorithm's (`magnet.search.strategies.genetic.breed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magnet.checks import check_choice, check_float, check_int
from magnet.errors import UserError
from magnet.search.result import Generation
from magnet.search.strategies.genetic import CROSSOVERS, breed, select_elite

MAX_CHOSEN = 4  # parents a person can pick in one generation


@dataclass
class Breeding:
    """How a generation is bred from chosen parents (the studio's sliders and `conf/studio.yaml`)."""

    children: int = 16               # new candidates per generation
    mutation_amount: float = 0.25    # std of the Gaussian mutation, in units of the space's spread
    clip_weight: float = 0.0         # share of the children bred from CLIP's best: 0 the person, 1 CLIP
    clip_parents: int = 4            # how many of CLIP's best breed its share
    crossover: str = "linear"        # linear: (1 - r) * a + r * b | point: one-point crossover
    recombination_amount: float = 0.333  # r of the linear crossover

    def __post_init__(self):
        check_int("children", self.children, at_least=1)
        check_float("mutation_amount", self.mutation_amount, at_least=0)
        check_float("clip_weight", self.clip_weight, at_least=0, at_most=1)
        check_int("clip_parents", self.clip_parents, at_least=1)
        check_choice("crossover", self.crossover, CROSSOVERS)
        check_float("recombination_amount", self.recombination_amount)


def offspring(parents: torch.Tensor, n: int, settings: Breeding, scale, rng: torch.Generator) -> torch.Tensor:
    """n children of `parents` (k, ...): rounds of the GA's k * k ordered-pair children, cut to n."""
    children = torch.empty(0, *parents.shape[1:])
    while len(children) < n:
        batch = breed(parents, settings.crossover, settings.recombination_amount, settings.mutation_amount,
                      scale, rng)
        children = torch.cat([children, batch])
    return children[:n]


def choose_parents(last: Generation, chosen, settings: Breeding) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(the person's parents, CLIP's parents, children for the person's) among the candidates of `last`."""
    chosen = torch.as_tensor(list(dict.fromkeys(int(i) for i in chosen)), dtype=torch.long)
    size = len(last.scores)
    n_person = round((1 - settings.clip_weight) * settings.children)
    if len(chosen) > MAX_CHOSEN or any(not 0 <= int(i) < size for i in chosen):
        raise UserError(f"pick 1 to {MAX_CHOSEN} parents among the {size} paintings of this generation")
    if n_person and not len(chosen):
        raise UserError(f"no parents picked: click 1 to {MAX_CHOSEN} paintings first, or set the CLIP blend to 1 "
                        "to let CLIP choose")
    clip = select_elite(last.scores, min(settings.clip_parents, size))
    return chosen, clip, n_person


def next_generation(last: Generation, chosen, settings: Breeding, space, evaluate, rng: torch.Generator,
                    label: str = "bred") -> Generation:
    """Breed, render and score the generation after `last`; the parents that bred go in front, not re-rendered.

    `space` is the LatentSpace of `last`'s latents, `evaluate` a `magnet.search.evaluate.Evaluator` on it.
    """
    person, clip, n_person = choose_parents(last, chosen, settings)
    scale = space.noise_scale(last.latents)
    groups = [(person, n_person), (clip, settings.children - n_person)]
    children = space.project(torch.cat([offspring(last.latents[p], n, settings, scale, rng) for p, n in groups if n]))
    parents = torch.cat([p for p, n in groups if n])
    parents = torch.as_tensor(list(dict.fromkeys(parents.tolist())), dtype=torch.long)  # chosen by both: once
    scores, thumbnails = evaluate(children, label)
    return Generation(torch.cat([last.latents[parents], children]),
                      torch.cat([last.scores[parents], scores]),
                      torch.cat([last.thumbnails[parents], thumbnails]), num_parents=len(parents))
