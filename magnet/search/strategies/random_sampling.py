"""Best of N random latents: the baseline every search is measured against, at the same render budget."""

from __future__ import annotations

from dataclasses import dataclass

from magnet.errors import UserError
from magnet.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
@dataclass
class RandomSearch(Strategy):
    """`num_initial_samples` latents scored once; the best is the result (MAGnet's GA budget: 280)."""

    num_initial_samples: int = 280
    generations: int = 0

    def __post_init__(self):
        if self.num_initial_samples < 1 or self.generations != 0:
            raise UserError(f"random search takes num_initial_samples >= 1 (got {self.num_initial_samples}) "
                            "and no generations")
