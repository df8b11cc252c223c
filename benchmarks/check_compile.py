"""Checks that the networks are GPU-friendly: torch.compile(fullgraph=True) with no graph break, bf16 autocast
and channels_last give the eager results. Runs on any device (CPU: needs a C++ compiler, about 30 s).
Exits 1 when a check fails.

    python benchmarks/check_compile.py [--device cuda]
"""

import argparse
import sys
import time

import torch

from magnet import build_discriminator, build_generator

TOLERANCE = 1e-4  # max abs difference allowed against eager float32 (outputs are of order 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(parser.parse_args().device)
    torch.manual_seed(0)
    G = build_generator("swagan", 32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16).eval().to(device)
    D = build_discriminator("swagan", 32, channel_multiplier=1, channel_max=16).to(device)
    z = torch.randn(2, 16, device=device)
    img = torch.randn(2, 3, 32, 32, device=device)
    failures = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failures.append(name)

    with torch.no_grad():
        eager = G(z, noise_mode="const")
        start = time.perf_counter()
        diff = (torch.compile(G, fullgraph=True)(z, noise_mode="const") - eager).abs().max().item()
        check("G torch.compile(fullgraph=True)", diff <= TOLERANCE,
              f"max diff {diff:.2e}, {time.perf_counter() - start:.0f} s to compile")
        diff = (torch.compile(D, fullgraph=True)(img) - D(img)).abs().max().item()
        check("D torch.compile(fullgraph=True)", diff <= TOLERANCE, f"max diff {diff:.2e}")
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = G(z, noise_mode="const")
            scores = D(out)
        check("bf16 autocast", bool(torch.isfinite(out).all() and torch.isfinite(scores).all()),
              f"G {out.dtype}, D {scores.dtype}, finite={bool(torch.isfinite(out).all())}")
        diff = (D(img.contiguous(memory_format=torch.channels_last)) - D(img)).abs().max().item()
        check("channels_last D", diff <= TOLERANCE, f"max diff {diff:.2e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
