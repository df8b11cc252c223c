"""Latent walks as video: through paintings, seeds or random latents; slerp in z, lerp in W / W+."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from magnet.checks import check_bool, check_choice, check_float, check_int, check_text
from magnet.errors import ConfigError, UserError
from magnet.explore.context import ExploreContext, Tool
from magnet.explore.paintings import read_painting
from magnet.explore.render import (
    check_frame_settings,
    check_seed,
    check_sources,
    painting_paths,
    seed_z,
    synthesize,
    to_frame,
)
from magnet.explore.video import check_video_settings, write_video
from magnet.search.space import LatentSpace

WALK_SPACES = ("z", "w", "w+")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of vectors a, b (D,) at fractions t (F,) -> (F, D); the norm of a and b is kept
    between vectors of the same norm."""
    a, b, t = a.double(), b.double(), t.double()[:, None]
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega < 1e-6:  # (nearly) the same direction: the line is the arc
        return torch.lerp(a, b, t).float()
    return ((torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)).float()


def walk_latents(keyframes: torch.Tensor, num_frames: int, space: str = "z", loop: bool = False) -> torch.Tensor:
    """`num_frames` latents through the K keyframes (K, ...) in order, evenly spaced in keyframe steps: slerp
    in z, lerp in W / W+. Without `loop` the first and last frames are the first and last keyframes; with it the
    walk returns towards the first keyframe, so the video repeats seamlessly."""
    check_choice("space", space, WALK_SPACES)
    check_int("num_frames", num_frames, at_least=2)
    if len(keyframes) < 2:
        raise ConfigError("keyframes", len(keyframes), "at least 2 latents to walk between")
    points = torch.cat([keyframes, keyframes[:1]]) if loop else keyframes
    segments = len(points) - 1
    positions = torch.arange(num_frames, dtype=torch.float64) * segments / (num_frames if loop else num_frames - 1)
    frames = []
    for s in range(segments):
        inside = (positions >= s) & ((positions < s + 1) if s < segments - 1 else (positions <= s + 1))
        t = positions[inside] - s
        a, b = points[s], points[s + 1]
        if space == "z":
            frames.append(slerp(a, b, t))
        else:
            frames.append(torch.lerp(a.double(), b.double(), t.view(-1, *[1] * a.ndim)).float())
    return torch.cat(frames)


def walk_frames(generator, latents: torch.Tensor, space: str, truncation_psi: float = 1.0, size: int | None = None,
                levels: bool = False, batch_size: int = 8, progress=None) -> Iterator[np.ndarray]:
    """Frames (size, size, 3) uint8 of walk latents: z (F, D) mapped with psi, or W+ (F, n_latent, D)."""
    ws = latents
    if space == "z":
        with torch.no_grad():
            ws = torch.cat([LatentSpace(generator, "z", truncation_psi).to_ws(z).cpu() for z in latents.split(256)])
    for image in synthesize(generator, ws, batch_size, progress):
        yield to_frame(image, size, levels)


def write_walk(generator, keyframes: torch.Tensor, path, space: str = "z", truncation_psi: float = 1.0,
               fps: float = 24, seconds: float = 4.0, loop: bool = False, size: int | None = None,
               levels: bool = False, fmt: str = "mp4", batch_size: int = 8, progress=None) -> Path:
    """A walk through keyframes (z (K, D) or W+ (K, n_latent, D)) as a video of round(fps * seconds) frames."""
    latents = walk_latents(keyframes, max(2, round(fps * seconds)), space, loop)
    frames = walk_frames(generator, latents, space, truncation_psi, size, levels, batch_size, progress)
    return write_video(path, frames, fps, fmt)


@dataclass
class WalkSettings(Tool):
    """python explore.py explore=walk explore.seeds=[1,2,3]   (or explore.paintings=[a.png,b.png], explore.random=5)"""

    paintings: list[str] = field(default_factory=list)  # painting.png files, walked in order
    seeds: list[int] = field(default_factory=list)      # seeds, walked in order (after the paintings)
    random: int = 0                # this many random latents from `seed` (after the others)
    seed: int = 0                  # seed of the random latents
    loop: bool = False             # back to the first latent at the end (a video that repeats seamlessly)
    space: str | None = None       # z (slerp) | w | w+ (lerp); null: z when every latent is a plain z, else w+
    truncation_psi: float = 1.0    # for seeds and random latents (paintings keep theirs)
    fps: float = 24
    seconds: float = 4.0           # length of the video
    size: int | None = None        # px; null: the generator's
    levels: bool = False           # auto-levels per frame (as painting.png)
    format: str = "mp4"            # mp4 | gif (mp4 falls back to gif without ffmpeg)
    batch_size: int = 8            # frames rendered at a time
    name: str = "walk"             # file name in the output folder

    def __post_init__(self):
        if not isinstance(self.paintings, list | tuple) or not all(isinstance(p, str) for p in self.paintings):
            raise ConfigError("paintings", self.paintings, "a list of painting.png paths")
        check_sources("paintings", self.paintings, at_least=0)
        if not isinstance(self.seeds, list | tuple) or any(isinstance(s, str) for s in self.seeds):
            raise ConfigError("seeds", self.seeds, "a list of seeds")
        check_sources("seeds", self.seeds, at_least=0)
        check_int("random", self.random, at_least=0, at_most=10_000)
        check_seed("seed", self.seed)
        check_bool("loop", self.loop)
        if self.space is not None:
            check_choice("space", self.space, WALK_SPACES)
        check_float("truncation_psi", self.truncation_psi)
        check_video_settings(self.fps, self.format)
        check_float("seconds", self.seconds, above=0, at_most=3600)
        check_frame_settings(self.size, self.levels, self.batch_size)
        check_text("name", self.name)
        count = len(self.paintings) + len(self.seeds) + self.random
        if count < 2:
            raise UserError(f"a walk needs at least 2 latents, paintings, seeds and random give {count}: e.g. "
                            "explore.seeds=[1,2] or explore.random=4")

    def inputs(self) -> list[Path]:
        return painting_paths(self.paintings)

    @torch.no_grad()
    def keyframes(self, generator) -> tuple[torch.Tensor, str, float]:
        """(keyframes, space, psi): z (K, D) when every keyframe is a plain z of one psi, else W+ (K, L, D)."""
        paintings = [read_painting(p) for p in self.paintings]
        rng = torch.Generator().manual_seed(self.seed)
        zs = [seed_z(generator, s) for s in self.seeds] + list(LatentSpace(generator, "z").sample(self.random, rng))
        psis = {p.truncation_psi for p in paintings} | ({float(self.truncation_psi)} if zs else set())
        plain_z = all(p.space == "z" and not p.edits for p in paintings) and len(psis) == 1
        space = self.space or ("z" if plain_z else "w+")
        if space == "z":
            if not plain_z:
                bad = next((p for p in paintings if p.space != "z" or p.edits), paintings[0])
                raise UserError(f"a walk in z needs plain z latents of one psi, but {bad.path} is a {bad.space} latent"
                                f"{' with edits' if bad.edits else ''} at psi {bad.truncation_psi} (others: "
                                f"{sorted(psis)}); walk in W+ instead: explore.space=w+")
            for p in paintings:
                p.ws(generator)  # refuses a latent of another model
            return torch.stack([p.latent for p in paintings] + zs), "z", psis.pop()
        mapped = LatentSpace(generator, "z", self.truncation_psi)
        ws = [p.ws(generator).cpu() for p in paintings] + [mapped.to_ws(z[None])[0].cpu() for z in zs]
        return torch.stack(ws), space, float(self.truncation_psi)

    def run(self, context: ExploreContext) -> Path:
        keyframes, space, psi = self.keyframes(context.generator)
        return write_walk(context.generator, keyframes, context.out_dir / self.name, space, psi, self.fps,
                          self.seconds, self.loop, self.size, self.levels, self.format, self.batch_size,
                          context.progress_for("walk"))
