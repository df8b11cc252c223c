"""Run one seeded search of a generator's latent space for a CLIP objective."""

from __future__ import annotations

import torch

from magnet.search.cmaes import CMAESSearch
from magnet.search.evaluate import Evaluator
from magnet.search.genetic import GeneticSearch
from magnet.search.result import SearchResult
from magnet.search.space import LatentSpace

STRATEGIES = {"genetic": GeneticSearch, "cmaes": CMAESSearch}


def build_strategy(name: str, **settings):
    """A search strategy by name ('genetic', MAGnet's, or 'cmaes') with its settings."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} is not one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](**settings)


def run_search(
    generator,
    objective,
    strategy,
    space: str = "z",
    truncation_psi: float = 1.0,
    seed: int = 0,
    batch_size: int = 20,
    thumb_size: int = 128,
    progress=None,
) -> SearchResult:
    """Search `space` of `generator` for high `objective` scores; the same seed gives the same result.

    Random numbers come from a CPU generator of their own, so the search neither uses nor disturbs the
    global RNG (training is not perturbed by a preview) and latents do not depend on the device.
    """
    rng = torch.Generator().manual_seed(int(seed))
    latent_space = LatentSpace(generator, space, truncation_psi)
    evaluate = Evaluator(latent_space, objective, batch_size, thumb_size, progress)
    result = strategy.run(evaluate, latent_space, rng)
    result.renders = evaluate.renders
    return result
