"""Explore a trained generator: latent walks, the video of a search, style mixing, truncation sweeps,
closed-form (SeFa) edit directions and the projection of real images. Plain functions (tensors and paths in,
images and paths out, an optional `progress(done, total)` callback), so explore.py and the studio share them.

Contract of an explore tool (one module here, one `conf/explore/<tool>.yaml` with `_target_` its settings):
- a dataclass subclassing `Tool`, whose constructor checks every setting (ConfigError naming it);
- `inputs() -> list[Path]`: the painting.png / search.json files it reads; their recipes choose the
  checkpoint when `ckpt_path` is not given, and a recipe of another checkpoint is refused;
- `run(context: ExploreContext) -> Path`: the work; the context holds the generator, device, out_dir,
  ckpt_path and a `progress(label, done, total)` callback; the path returned is printed.
"""

from magnet.explore.context import ExploreContext, Tool, rich_progress
from magnet.explore.mixing import MixingSettings, mix, mixing_grid
from magnet.explore.paintings import Painting, choose_checkpoint, read_painting, render_recipe
from magnet.explore.perceptual import DISTANCES, PerceptualDistance, build_distance
from magnet.explore.projection import Projected, Projection, psnr, read_target
from magnet.explore.searchvideo import SearchVideoSettings, search_frames
from magnet.explore.sefa import (
    EditSettings,
    SefaSettings,
    cached_directions,
    closed_form_directions,
    edit_recipe,
    move,
    sefa_frames,
    sefa_grid,
)
from magnet.explore.truncation import TruncationSettings, truncate, truncation_strip
from magnet.explore.video import find_ffmpeg, write_video
from magnet.explore.walk import WalkSettings, slerp, walk_frames, walk_latents, write_walk
from magnet.search.recipes import apply_edits

__all__ = [
    "DISTANCES",
    "EditSettings",
    "ExploreContext",
    "MixingSettings",
    "Painting",
    "PerceptualDistance",
    "Projected",
    "Projection",
    "SearchVideoSettings",
    "SefaSettings",
    "Tool",
    "TruncationSettings",
    "WalkSettings",
    "apply_edits",
    "build_distance",
    "cached_directions",
    "choose_checkpoint",
    "closed_form_directions",
    "edit_recipe",
    "find_ffmpeg",
    "mix",
    "mixing_grid",
    "move",
    "psnr",
    "read_target",
    "read_painting",
    "render_recipe",
    "rich_progress",
    "search_frames",
    "sefa_frames",
    "sefa_grid",
    "slerp",
    "truncate",
    "truncation_strip",
    "walk_frames",
    "walk_latents",
    "write_video",
    "write_walk",
]
