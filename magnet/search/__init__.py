"""CLIP-guided search of a generator's latents: ask/tell strategies, refinement, outputs."""

from magnet.search.evaluate import Screen
from magnet.search.outputs import read_png_metadata
from magnet.search.paint import PaintSettings, paint
from magnet.search.postprocess import auto_levels
from magnet.search.prompts import ClipObjective, WeightedPrompt, parse_prompt
from magnet.search.refine import Refiner
from magnet.search.run import run_search
from magnet.search.space import LatentSpace
from magnet.search.strategies import STRATEGIES, CMAESSearch, GeneticSearch, RandomSearch, Strategy, build_strategy

__all__ = [
    "STRATEGIES",
    "CMAESSearch",
    "ClipObjective",
    "GeneticSearch",
    "LatentSpace",
    "PaintSettings",
    "RandomSearch",
    "Refiner",
    "Screen",
    "Strategy",
    "WeightedPrompt",
    "auto_levels",
    "build_strategy",
    "paint",
    "parse_prompt",
    "read_png_metadata",
    "run_search",
]
