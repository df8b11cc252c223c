"""Search strategies by name, each an ask/tell object in its own file (see base.py for the shape).

A new strategy is one file here that registers a Strategy subclass, and one yaml in conf/search/strategy/.
"""

from magnet.search.strategies import cmaes, genetic, random_sampling  # noqa: F401  (they register themselves)
from magnet.search.strategies.base import STRATEGIES, Strategy, build_strategy
from magnet.search.strategies.cmaes import CMAESSearch
from magnet.search.strategies.genetic import GeneticSearch
from magnet.search.strategies.random_sampling import RandomSearch

__all__ = ["STRATEGIES", "CMAESSearch", "GeneticSearch", "RandomSearch", "Strategy", "build_strategy"]
