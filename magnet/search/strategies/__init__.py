"""Search strategies by name, each an ask/tell object in its own file (see base.py for the shape).

A new strategy is one file here that registers a Strategy subclass, and one yaml in conf/search/strategy/:
every module of this package is imported below, so it registers itself.
"""

import importlib
import pkgutil

from magnet.search.strategies.base import STRATEGIES, Strategy, build_strategy
from magnet.search.strategies.cmaes import CMAESSearch
from magnet.search.strategies.genetic import GeneticSearch
from magnet.search.strategies.random_sampling import RandomSearch

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STRATEGIES", "CMAESSearch", "GeneticSearch", "RandomSearch", "Strategy", "build_strategy"]
