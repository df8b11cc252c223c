"""Does the search beat random sampling at an equal number of renders, and how long does MAGnet's search take?

python benchmarks/bench_search.py                      # GA variants vs random, 10 seeds x 3 prompts
python benchmarks/bench_search.py --skip-compare --timing  # cost of MAGnet's search at 512 px + ViT-B/32
(--timing-full runs the whole search instead of extrapolating from one batch)

CLIP may have random weights (the default, so it runs offline): the score is still one fixed function of the
image, so the comparison measures the optimiser, not the meaning. Each variant's best score is paired with
the best of as many random samples under the same seed: the `random` strategy at the same render budget.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import time
from pathlib import Path

import torch

from magnet import build_generator
from magnet.clip import load_clip
from magnet.search import (
    ClipObjective,
    CMAESSearch,
    GeneticSearch,
    LatentSpace,
    RandomSearch,
    parse_prompt,
    run_search,
)

PROMPTS = ("orange triangles", "a portrait of a woman in blue | text:-1", "abstract city at night")


class MagnetNormSpace(LatentSpace):
    """MAGnet's quirk, for comparison only: children rescaled to norm 100 while samples keep ~sqrt(dim)."""

    def project(self, latents):
        return torch.nn.functional.normalize(latents, dim=-1) * 100


VARIANTS = {
    "ga z (ours)": (GeneticSearch(), LatentSpace, "z"),
    "ga z, MAGnet norm 100": (GeneticSearch(), MagnetNormSpace, "z"),
    "ga z, point crossover": (GeneticSearch(crossover="point"), LatentSpace, "z"),
    "ga w": (GeneticSearch(), LatentSpace, "w"),
    "ga w+": (GeneticSearch(), LatentSpace, "w+"),
    "cmaes z": (CMAESSearch(), LatentSpace, "z"),
}


DEFAULT_VARIANTS = ["ga z (ours)", "ga z, MAGnet norm 100", "cmaes z"]


class CachedObjective(torch.nn.Module):
    """The CLIP objective with a cache keyed on image bytes: variants share their identical initial renders."""

    def __init__(self, objective):
        super().__init__()
        self.objective, self.cache = objective, {}

    def forward(self, images):
        keys = [hashlib.sha1(img.detach().cpu().numpy().tobytes()).hexdigest() for img in images]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            for i, score in zip(todo, self.objective(images[todo]).tolist(), strict=True):
                self.cache[keys[i]] = score
        return torch.tensor([self.cache[k] for k in keys])


def best_random(generator, objective, seed: int, renders: int, batch: int) -> float:
    """The `random` strategy at the same render budget and seed: the best of `renders` random z."""
    result = run_search(RandomSearch(num_initial_samples=renders), LatentSpace(generator), objective, seed, batch, 8)
    return result.best_score


def compare(args, clip, device) -> dict:
    torch.manual_seed(0)
    generator = build_generator(
        "swagan", size=args.size, style_dim=512, n_mlp=8, channel_multiplier=1, channel_max=args.channels
    ).to(device)
    generator.eval()
    rows = {name: [] for name in args.variants}
    for prompt in args.prompts:
        objective = CachedObjective(ClipObjective(clip, parse_prompt(prompt)))
        for seed in range(args.seeds):
            for name in args.variants:
                strategy, space_cls, space_name = VARIANTS[name]
                result = run_search(strategy, space_cls(generator, space_name), objective, seed, args.batch_size, 8)
                rand = best_random(generator, objective, seed, result.renders, args.batch_size)
                rows[name].append(
                    {
                        "prompt": prompt,
                        "seed": seed,
                        "renders": result.renders,
                        "best": result.best_score,
                        "random": rand,
                    }
                )
            print(
                f"{prompt!r} seed {seed}: "
                + ", ".join(f"{n} {rows[n][-1]['best'] - rows[n][-1]['random']:+.4f}" for n in args.variants),
                flush=True,
            )
    summary = {}
    for name, runs in rows.items():
        gains = [r["best"] - r["random"] for r in runs]
        summary[name] = {
            "renders": runs[0]["renders"],
            "best_mean": statistics.mean(r["best"] for r in runs),
            "random_mean": statistics.mean(r["random"] for r in runs),
            "gain_mean": statistics.mean(gains),
            "gain_std": statistics.stdev(gains),
            "gain_sem": statistics.stdev(gains) / math.sqrt(len(gains)),
            "wins": sum(g > 0 for g in gains),
            "runs": len(gains),
        }
    return {"runs": rows, "summary": summary}


def timing(args, device) -> dict:
    """MAGnet's default search at MAGnet's size: 512 px SWAGAN (random weights), CLIP ViT-B/32, 280 renders.

    Per-image costs come from one warm batch; the whole search runs only with --timing-full (slow on a CPU).
    """
    torch.manual_seed(0)
    generator = build_generator("swagan", size=512).to(device).eval()
    clip = load_clip("ViT-B-32", None, device=device)
    objective = ClipObjective(clip, parse_prompt("orange triangles"))
    batch = args.timing_batch
    with torch.no_grad():
        z = torch.randn(batch, 512, device=device)
        objective(generator(z[:1], noise_mode="const"))  # warm-up
        t0 = time.perf_counter()
        images = generator(z, noise_mode="const")
        t1 = time.perf_counter()
        objective(images)
        t2 = time.perf_counter()
    report = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "render_s_per_image": (t1 - t0) / batch,
        "clip_s_per_image": (t2 - t1) / batch,
        "estimated_wall_s_280_renders": 280 * (t2 - t0) / batch,
    }
    if args.timing_full:
        start = time.perf_counter()
        result = run_search(GeneticSearch(), LatentSpace(generator), objective, seed=0, batch_size=args.batch_size)
        report.update(renders=result.renders, wall_s=time.perf_counter() - start)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="generator resolution for the comparison")
    parser.add_argument("--channels", type=int, default=64, help="generator channel cap for the comparison")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument("--clip", default="ViT-S-32-alt", help="objective's CLIP (small: a fixed function, fast)")
    parser.add_argument("--pretrained", default=None, help="open_clip tag or weights file; default random")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--timing", action="store_true", help="also time MAGnet's default search at 512 px")
    parser.add_argument("--timing-batch", type=int, default=4, help="images per timed batch")
    parser.add_argument("--timing-full", action="store_true", help="run the whole 280-render search")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--out", default="outputs/bench_search.json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report = {"args": vars(args)}
    if not args.skip_compare:
        torch.manual_seed(0)  # a CLIP with random weights is then the same objective on every run
        report["compare"] = compare(args, load_clip(args.clip, args.pretrained, device=device), device)
        print(f"\n{'variant':<24}{'renders':>8}{'best':>9}{'random':>9}{'gain':>9}{'± std':>8}{'± sem':>8}  wins")
        for name, s in report["compare"]["summary"].items():
            print(
                f"{name:<24}{s['renders']:>8}{s['best_mean']:>9.4f}{s['random_mean']:>9.4f}"
                f"{s['gain_mean']:>+9.4f}{s['gain_std']:>8.4f}{s['gain_sem']:>8.4f}  {s['wins']}/{s['runs']}"
            )
    if args.timing:
        report["timing"] = timing(args, device)
        print(json.dumps(report["timing"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
