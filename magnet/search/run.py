"""Run one seeded search of a latent space for a CLIP objective: the ask/tell loop with rendering."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from magnet.search.evaluate import Evaluator
from magnet.search.result import Generation, SearchResult


def search_generations(strategy, evaluate: Evaluator, seed: int = 0, around=None,
                       spread: float = 0.5) -> Iterator[Generation]:
    """Start `strategy` on the evaluator's space with `seed` and yield each generation as soon as it is scored.
    With `around` (a latent of the space) the initial population is drawn around it, `spread` wide.

    Random numbers come from a CPU generator of their own, so the search neither uses nor disturbs the
    global RNG (training is not perturbed by a preview) and latents do not depend on the device.
    """
    strategy.start(evaluate.space, torch.Generator().manual_seed(int(seed)), around, spread)
    while not strategy.done:
        label = f"generation {strategy.generation}" if strategy.generation else "initial"
        strategy.tell(*evaluate(strategy.ask(), label))
        yield strategy.history[-1]


def run_search(strategy, space, objective, seed: int = 0, batch_size: int = 20, thumb_size: int = 128,
               progress=None, precision: str = "fp32", preview: bool = False, around=None,
               spread: float = 0.5) -> SearchResult:
    """Search `space` (a LatentSpace) for high `objective` scores; the same seed gives the same result.

    `precision` and `preview` say how candidates are rendered and scored (see `Evaluator`); `around`, `spread`:
    a start from a latent, as in `search_generations`.
    """
    evaluate = Evaluator(space, objective, batch_size, thumb_size, progress, precision, preview)
    for _ in search_generations(strategy, evaluate, seed, around, spread):
        pass
    result = strategy.result()
    result.renders = evaluate.renders
    return result
