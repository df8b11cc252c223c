"""Does the search beat random sampling at an equal number of renders, and how long does MAGnet's search take?

python benchmarks/bench_search.py                      # GA variants vs random, 10 seeds x 3 prompts
python benchmarks/bench_search.py --skip-compare --timing  # cost of MAGnet's search at 512 px + ViT-B/32
(--timing-full runs the whole search instead of extrapolating from one batch)
python benchmarks/bench_search.py --skip-compare --agreement 200  # CLIP scores of previews vs full renders

Every figure is given for today's path (float32, every candidate at full size) and the fast ones (bf16; the
initial population screened on previews) side by side, measured in the same process. A variant's gain over
random is the float32 full-size score of the latent it chose (what painting.png gets) minus the best of as many
random samples (as many as it had candidates, previews included), scored at full size.

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
import torch.nn.functional as F
from scipy import stats

from magnet import build_generator
from magnet.clip import load_clip
from magnet.images import to_uint8
from magnet.precision import autocast
from magnet.search import (
    ClipObjective,
    CMAESSearch,
    GeneticSearch,
    LatentSpace,
    RandomSearch,
    Screen,
    parse_prompt,
    run_search,
)

PROMPTS = ("orange triangles", "a portrait of a woman in blue | text:-1", "abstract city at night")


class MagnetNormSpace(LatentSpace):
    """MAGnet's quirk, for comparison only: children rescaled to norm 100 while samples keep ~sqrt(dim)."""

    def project(self, latents):
        return torch.nn.functional.normalize(latents, dim=-1) * 100


EXACT = {"precision": "fp32"}  # today's path
SCREENED = "screen"  # replaced by a Screen of --screen-size px previews that keeps 20
VARIANTS = {  # strategy, space class, space, how candidates are rendered and scored
    "ga z (ours)": (GeneticSearch(), LatentSpace, "z", EXACT),
    "ga z, screen": (GeneticSearch(), LatentSpace, "z", {"precision": "fp32", "screen": SCREENED}),
    "ga z, bf16": (GeneticSearch(), LatentSpace, "z", {"precision": "bf16"}),
    "ga z, bf16 + screen": (GeneticSearch(), LatentSpace, "z", {"precision": "bf16", "screen": SCREENED}),
    "ga z, MAGnet norm 100": (GeneticSearch(), MagnetNormSpace, "z", EXACT),
    "ga z, point crossover": (GeneticSearch(crossover="point"), LatentSpace, "z", EXACT),
    "ga w": (GeneticSearch(), LatentSpace, "w", EXACT),
    "ga w+": (GeneticSearch(), LatentSpace, "w+", EXACT),
    "cmaes z": (CMAESSearch(), LatentSpace, "z", EXACT),
}


DEFAULT_VARIANTS = ["ga z (ours)", "ga z, bf16 + screen", "ga z, MAGnet norm 100", "cmaes z"]
# How one candidate is rendered: precision and px (None: full size); previews 1, 2 and 3 blocks below the top.
RENDERS = {"fp32 full (today)": ("fp32", None), "bf16 full": ("bf16", None), "bf16 preview 256": ("bf16", 256),
           "bf16 preview 128": ("bf16", 128), "bf16 preview 64": ("bf16", 64)}
# How a whole search renders: precision and screening of the initial population (the default: bf16, screened).
SEARCHES = {"fp32 full (today)": ("fp32", Screen(keep=0)), "bf16 full": ("bf16", Screen(keep=0)),
            "bf16 + screen (default)": ("bf16", Screen())}
KEEPS = (10, 20, 40)  # screens scored by --agreement: how many of each population of 200 are kept
POPULATION = 200  # MAGnet's initial population: --agreement latents are screened 200 at a time


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


def best_random(generator, objective, seed: int, candidates: int, batch: int, precision: str) -> float:
    """The `random` strategy at the same budget and seed: the best of `candidates` random z at full size, scored
    as painting.png would be (float32)."""
    space = LatentSpace(generator)
    result = run_search(RandomSearch(num_initial_samples=candidates), space, objective, seed, batch, 8,
                        precision=precision)
    with torch.no_grad():
        return float(objective(space.render(result.best_latent[None]))[0])


def compare(args, clip, device) -> dict:
    torch.manual_seed(0)
    generator = build_generator(
        "swagan", size=args.size, style_dim=512, n_mlp=8, channel_multiplier=1, channel_max=args.channels
    ).to(device)
    generator.eval()
    rows = {name: [] for name in args.variants}
    screen = Screen(preview_size=args.screen_size or args.size // 4)
    for prompt in args.prompts:
        objective = CachedObjective(ClipObjective(clip, parse_prompt(prompt)))
        for seed in range(args.seeds):
            for name in args.variants:
                strategy, space_cls, space_name, how = VARIANTS[name]
                space = space_cls(generator, space_name)
                how = {**how, "screen": screen} if how.get("screen") == SCREENED else how
                result = run_search(strategy, space, objective, seed, args.batch_size, 8, **how)
                with torch.no_grad():  # what painting.png would score: float32, full size
                    best = float(objective(space.render(result.best_latent[None]))[0])
                candidates = result.renders + result.previews
                rand = best_random(generator, objective, seed, candidates, args.batch_size, args.random_precision)
                rows[name].append(
                    {
                        "prompt": prompt,
                        "seed": seed,
                        "renders": result.renders,
                        "previews": result.previews,
                        "best": best,
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


def magnet_setup(device, channel_max: int = 512, pretrained: str | None = None):
    """MAGnet's setup: a 512 px SWAGAN with random weights (narrower with `channel_max`), CLIP ViT-B/32 with
    the weights `pretrained` (an open_clip tag or file; None: random)."""
    torch.manual_seed(0)
    generator = build_generator("swagan", size=512, channel_max=channel_max).to(device).eval()
    return generator, load_clip("ViT-B-32", pretrained, device=device)


def timing(args, device) -> dict:
    """MAGnet's default search at MAGnet's size (200 + 5 x 16 candidates) at each of RENDERS, back to back.

    Per-candidate costs come from one warm batch per way of rendering; with --timing-full the whole search also
    runs each way of SEARCHES named by --timing-full-paths (slow on a CPU: today's took 203-336 s).
    """
    generator, clip = magnet_setup(device, pretrained=args.pretrained)
    objective = ClipObjective(clip, parse_prompt("orange triangles"))
    space = LatentSpace(generator)
    batch = args.timing_batch
    z = space.sample(batch, torch.Generator().manual_seed(0))
    report = {"device": str(device), "threads": torch.get_num_threads(), "renders": {}, "searches": {}}
    with torch.no_grad():
        for name, (precision, px) in RENDERS.items():
            size = space.preview_size(px) if px else None
            with autocast(precision, device):
                objective(space.render(z[:1], size, precision))  # warm-up
            t0 = time.perf_counter()
            images = space.render(z, size, precision)
            t1 = time.perf_counter()
            with autocast(precision, device):
                objective(images)
            t2 = time.perf_counter()
            report["renders"][name] = {"render_s_per_image": (t1 - t0) / batch, "clip_s_per_image": (t2 - t1) / batch}
            if name == "fp32 full (today)":
                today = to_uint8(images).float()
            elif name == "bf16 full":
                diff = (to_uint8(images).float() - today).abs()
                report["renders"][name].update(uint8_mean_abs_diff_vs_fp32=float(diff.mean()),
                                               uint8_max_abs_diff_vs_fp32=float(diff.max()))
    for name in args.timing_full_paths if args.timing_full else ():
        precision, screen = SEARCHES[name]
        start = time.perf_counter()
        result = run_search(GeneticSearch(), space, objective, seed=0, batch_size=args.batch_size,
                            precision=precision, screen=screen)
        wall = time.perf_counter() - start
        with torch.no_grad():
            score = float(objective(space.render(result.best_latent[None]))[0])
        report["searches"][name] = {"renders": result.renders, "previews": result.previews, "wall_s": wall,
                                    "full_fp32_score_of_best": score}
        print(f"{name}: {wall:.1f} s", flush=True)
    return report


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def screen_quality(preview: torch.Tensor, full: torch.Tensor, keep: int, parents: int = 4) -> dict:
    """How a screen keeping the `keep` best previews does: how many of the true best `parents` (at full size)
    it keeps, and how far below the true best and the true `parents`-th best the kept ones' are."""
    kept = torch.argsort(preview, descending=True)[:keep]
    truth, ours = torch.sort(full, descending=True).values, torch.sort(full[kept], descending=True).values
    best = set(torch.argsort(full, descending=True)[:parents].tolist())
    return {"parents_kept": len(best & set(kept.tolist())), "best_lost": float(truth[0] - ours[0]),
            f"parent_{parents}_lost": float(truth[parents - 1] - ours[parents - 1])}


def agreement(args, device) -> dict:
    """CLIP scores of `args.agreement` latents each way of RENDERS against today's (float32, full size), per
    prompt: Spearman's rank correlation, and for the previews what a screen keeping 10 / 20 / 40 of each 200
    keeps (per prompt and population); plus the pixel correlation of each preview with the area-downsampled
    float32 image."""
    generator, clip = magnet_setup(device, args.agreement_channels, args.pretrained)
    objectives = [ClipObjective(clip, parse_prompt(p)) for p in args.prompts]
    space = LatentSpace(generator)
    latents = space.sample(args.agreement, torch.Generator().manual_seed(1))
    paths = {name: RENDERS[name] for name in ["fp32 full (today)", *args.agreement_paths]}
    scores = {name: [] for name in paths}
    pixel = {name: [] for name, (_, px) in paths.items() if px}
    with torch.no_grad():
        for batch in latents.split(args.timing_batch):
            for name, (precision, px) in paths.items():  # today's first: the previews are compared with it
                images = space.render(batch, space.preview_size(px) if px else None, precision)
                with autocast(precision, device):
                    features = clip.encode_images(images).float()  # once for all prompts
                scores[name].append(torch.stack([(features @ o.targets.T) @ o.weights for o in objectives], 1).cpu())
                if name == "fp32 full (today)":
                    full = images
                elif px:
                    down = F.interpolate(full, size=images.shape[-2:], mode="area")
                    pixel[name] += [pearson(p, d) for p, d in zip(images, down, strict=True)]
            print(f"agreement: {sum(len(s) for s in scores[name])} latents", flush=True)
    today = torch.cat(scores["fp32 full (today)"])
    report = {"latents": args.agreement, "channel_max": args.agreement_channels, "prompts": list(args.prompts),
              "paths": {}}
    for name, (_, px) in paths.items():
        ours = torch.cat(scores[name])
        rhos = [float(stats.spearmanr(ours[:, k], today[:, k]).statistic) for k in range(len(objectives))]
        report["paths"][name] = {"spearman_per_prompt": rhos, "spearman_mean": statistics.mean(rhos)}
        if px:
            groups = [slice(i, i + POPULATION) for i in range(0, len(ours) - POPULATION + 1, POPULATION)]
            screens = {keep: [screen_quality(ours[g, k], today[g, k], keep) for g in groups
                              for k in range(len(objectives))] for keep in KEEPS}
            report["paths"][name].update(
                pixel_pearson_vs_area_downsampled_mean=statistics.mean(pixel[name]), screens={
                    keep: {"parents_kept_of_4": [q["parents_kept"] for q in qs],
                           "best_kept": sum(q["best_lost"] == 0 for q in qs), "screens": len(qs),
                           "parent_4_lost_max": max(q["parent_4_lost"] for q in qs)}
                    for keep, qs in screens.items() if qs})
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="generator resolution for the comparison")
    parser.add_argument("--channels", type=int, default=64, help="generator channel cap for the comparison")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument("--clip", default="ViT-S-32-alt", help="objective's CLIP (small: a fixed function, fast)")
    parser.add_argument("--pretrained", default=None,
                        help="CLIP weights (open_clip tag or file) of every part; default random")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--timing", action="store_true", help="also time MAGnet's default search at 512 px")
    parser.add_argument("--timing-batch", type=int, default=4, help="images per timed batch")
    parser.add_argument("--timing-full", action="store_true", help="run the whole 280-render search")
    parser.add_argument("--timing-full-paths", nargs="+", default=list(SEARCHES), choices=list(SEARCHES))
    parser.add_argument("--agreement", type=int, default=0, help="latents for the preview/bf16 rank agreement")
    parser.add_argument("--agreement-channels", type=int, default=512, help="generator channel cap there")
    parser.add_argument("--agreement-paths", nargs="+", default=list(RENDERS), choices=list(RENDERS))
    parser.add_argument("--screen-size", type=int, default=None,
                        help="px of the screening previews in the comparison (default: a quarter of --size)")
    parser.add_argument("--random-precision", default="fp32", choices=["fp32", "bf16"],
                        help="of the random baseline's renders (its best is scored in float32 either way)")
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
    if args.agreement:
        report["agreement"] = agreement(args, device)
        print(json.dumps(report["agreement"], indent=1), flush=True)
    if args.timing:
        report["timing"] = timing(args, device)
        print(json.dumps(report["timing"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
