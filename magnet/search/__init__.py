"""CLIP-guided search of a generator's latents: MAGnet's genetic algorithm, CMA-ES, refinement, outputs."""

from magnet.search.cmaes import CMAESSearch
from magnet.search.genetic import GeneticSearch
from magnet.search.outputs import read_png_metadata
from magnet.search.paint import paint, render_latent
from magnet.search.postprocess import auto_levels
from magnet.search.prompts import ClipObjective, WeightedPrompt, parse_prompt
from magnet.search.refine import Refiner
from magnet.search.run import STRATEGIES, build_strategy, run_search
from magnet.search.space import LatentSpace

__all__ = [
    "STRATEGIES",
    "CMAESSearch",
    "ClipObjective",
    "GeneticSearch",
    "LatentSpace",
    "Refiner",
    "WeightedPrompt",
    "auto_levels",
    "build_strategy",
    "paint",
    "parse_prompt",
    "read_png_metadata",
    "render_latent",
    "run_search",
]
