"""Speed of FID: Inception feature extraction (images/s) and the Frechet distance of two feature sets.

    python benchmarks/bench_fid.py                      # CPU (or the GPU when there is one)
    python benchmarks/bench_fid.py --batch-size 64 --reps 5 --device cuda
    python benchmarks/bench_fid.py --precision-shift --num-gen 500   # how far bf16 moves FID (Met crops, 64 px)

Prints JSON: images/s (min/median/max over `--reps` timed batches after a warm-up) of uint8 images at
`--size` px through the Inception network (resize to 299 included), and seconds for one 2048-d Frechet
distance between two sets of `--fd-samples` features. `--precision-shift` instead measures FID against the
Met crops of one set of latents generated in float32 and in bf16 (magnet.precision), both quantised to uint8.
"""

import argparse
import json
import platform
import statistics
import time

import torch

from magnet import build_generator, load_generator
from magnet.metrics import InceptionFeatures, MetricSettings, MetricSuite, frechet_distance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision_shift(args, device: torch.device) -> dict:
    """FID of the same latents rendered in fp32 and in bf16 against the Met crops, and FID between the two."""
    from data_modules.met import MetDataModule

    met = MetDataModule(args.met_cache, size=args.size)
    met.prepare_data()
    if args.ckpt:
        generator = load_generator(args.ckpt, device=device).eval()
    else:  # the shape of experiment=met_cpu, random weights
        torch.manual_seed(0)
        generator = build_generator("swagan", args.size, channel_max=128).to(device).eval()
    figures = {}
    for precision in ("fp32", "bf16"):
        settings = MetricSettings(names=[f"fid{args.num_gen}_full"], batch_size=args.batch_size, precision=precision,
                                  cache_dir=args.cache_dir)
        suite = MetricSuite(settings)
        real = suite.real_features(met.image_dir, args.size, device, progress=False)["inception"]
        start = time.perf_counter()
        figures[precision] = suite.fake_features(generator, args.num_gen, settings.seed, progress=False)["inception"]
        figures[f"{precision}_generate_and_extract_s"] = time.perf_counter() - start
        figures[f"fid_{precision}"] = frechet_distance(real, figures[precision])
    return {
        "generator": args.ckpt or f"random swagan {args.size} px, channel_max 128",
        "num_gen": args.num_gen, "num_real": len(real), "size": args.size,
        "fid_fp32": figures["fid_fp32"], "fid_bf16": figures["fid_bf16"],
        "fid_bf16_minus_fp32": figures["fid_bf16"] - figures["fid_fp32"],
        "fid_between_fp32_and_bf16_sets": frechet_distance(figures["fp32"], figures["bf16"]),
        "seconds": {p: figures[f"{p}_generate_and_extract_s"] for p in ("fp32", "bf16")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="px of the images (256; --precision-shift: 64)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fd-samples", type=int, default=10000)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--precision-shift", action="store_true", help="FID in bf16 vs fp32 on the same latents")
    parser.add_argument("--num-gen", type=int, default=1000, help="generated images of --precision-shift")
    parser.add_argument("--ckpt", default=None, help="its generator; default: random weights, met_cpu's shape")
    parser.add_argument("--met-cache", default="data/met", help="where the Met crops are cached")
    parser.add_argument("--cache-dir", default="~/.cache/magnet/fid_stats", help="real-feature cache")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.size = args.size or (64 if args.precision_shift else 256)  # 64: make run's size
    if args.precision_shift:
        print(json.dumps(precision_shift(args, device), indent=2))
        return

    network = InceptionFeatures().to(device)
    images = torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8, device=device)
    network(images)  # warm-up
    _sync(device)
    rates = []
    for _ in range(args.reps):
        start = time.perf_counter()
        network(images)
        _sync(device)
        rates.append(args.batch_size / (time.perf_counter() - start))

    generator = torch.Generator().manual_seed(0)
    real = torch.randn(args.fd_samples, 2048, generator=generator)
    fake = torch.randn(args.fd_samples, 2048, generator=generator) + 0.1
    start = time.perf_counter()
    frechet_distance(real, fake)
    fd_seconds = time.perf_counter() - start

    print(json.dumps({
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "input_px": args.size,
        "inception_images_per_s": {
            "min": round(min(rates), 2), "median": round(statistics.median(rates), 2), "max": round(max(rates), 2),
        },
        "frechet_distance_s": {"samples_per_set": args.fd_samples, "dims": 2048, "seconds": round(fd_seconds, 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
