"""Best of N random latents: the baseline every search is measured against, at the same render budget."""

from __future__ import annotations

from dataclasses import dataclass

from magnet.checks import check_int
from magnet.errors import ConfigError
from magnet.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
@dataclass
class RandomSearch(Strategy):
    """`num_initial_samples` latents scored once; the best is the result (MAGnet's GA budget: 280)."""

    num_initial_samples: int = 280
    generations: int = 0

    def __post_init__(self):
        check_int("num_initial_samples", self.num_initial_samples, at_least=1)
        if self.generations != 0:
            raise ConfigError("generations", self.generations, "0: a random search scores one round of samples")
