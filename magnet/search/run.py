"""Run one seeded search of a latent space for a CLIP objective: the ask/tell loop with rendering."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from magnet.errors import UserError
from magnet.search.evaluate import Evaluator, Screen
from magnet.search.result import Generation, SearchResult


def check_screen(screen: Screen, strategy) -> None:
    """Refuse a screen that keeps fewer initial candidates than the strategy's parents (one line, at start-up)."""
    needed = getattr(strategy, "num_parents", 1)
    if 0 < screen.keep < needed:
        raise UserError(f"search.screen.keep={screen.keep} keeps fewer initial candidates than the {needed} "
                        f"parents of the search; give screen.keep >= {needed}, or 0 for no screening")


def search_generations(strategy, evaluate: Evaluator, seed: int = 0, around=None,
                       spread: float = 0.5) -> Iterator[Generation]:
    """Start `strategy` on the evaluator's space with `seed` and yield each generation as soon as it is scored.
    With `around` (a latent of the space) the initial population is drawn around it, `spread` wide.

    Random numbers come from a CPU generator of their own, so the search neither uses nor disturbs the
    global RNG (training is not perturbed by a preview) and latents do not depend on the device.
    A random initial population goes through the evaluator's screen first (only its best previews are scored
    at full size); one drawn around a latent is all alike, as children are, and is scored in full.
    """
    check_screen(evaluate.screening, strategy)
    strategy.start(evaluate.space, torch.Generator().manual_seed(int(seed)), around, spread)
    while not strategy.done:
        label = f"generation {strategy.generation}" if strategy.generation else "initial"
        latents = strategy.ask()
        kept = None if strategy.generation or around is not None else evaluate.screen(latents, label)
        if kept is None:
            strategy.tell(*evaluate(latents, label))
        else:
            strategy.tell(*evaluate(latents[kept], label), kept=kept)
        yield strategy.history[-1]


def run_search(strategy, space, objective, seed: int = 0, batch_size: int = 20, thumb_size: int = 128,
               progress=None, precision: str = "fp32", screen: Screen | None = None, around=None,
               spread: float = 0.5) -> SearchResult:
    """Search `space` (a LatentSpace) for high `objective` scores; the same seed gives the same result.

    `precision` and `screen` say how candidates are rendered and scored (see `Evaluator`); `around`, `spread`:
    a start from a latent, as in `search_generations`.
    """
    evaluate = Evaluator(space, objective, batch_size, thumb_size, progress, precision, screen)
    for _ in search_generations(strategy, evaluate, seed, around, spread):
        pass
    result = strategy.result()
    result.renders, result.previews = evaluate.renders, evaluate.previews
    return result
