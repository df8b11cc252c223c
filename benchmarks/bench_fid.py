"""Speed of FID: Inception feature extraction (images/s) and the Frechet distance of two feature sets.

    python benchmarks/bench_fid.py                      # CPU (or the GPU when there is one)
    python benchmarks/bench_fid.py --batch-size 64 --reps 5 --device cuda

Prints JSON: images/s (min/median/max over `--reps` timed batches after a warm-up) of uint8 images at
`--size` px through the Inception network (resize to 299 included), and seconds for one 2048-d Frechet
distance between two sets of `--fd-samples` features.
"""

import argparse
import json
import platform
import statistics
import time

import torch

from magnet.metrics import InceptionFeatures, frechet_distance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="px of the input images")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fd-samples", type=int, default=10000)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

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
