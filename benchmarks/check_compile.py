"""Checks that the networks are GPU-friendly: torch.compile(fullgraph=True) with no graph break, bf16 autocast
and channels_last give the eager results. Runs on any device (CPU: needs a C++ compiler, about 30 s).

    python benchmarks/check_compile.py [--device cuda]
"""

import argparse
import time

import torch

from magnet import build_discriminator, build_generator


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(parser.parse_args().device)
    torch.manual_seed(0)
    G = build_generator("swagan", 32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16).eval().to(device)
    D = build_discriminator("swagan", 32, 1, 16).to(device)
    z = torch.randn(2, 16, device=device)
    img = torch.randn(2, 3, 32, 32, device=device)
    with torch.no_grad():
        eager = G(z, noise_mode="const")
        start = time.perf_counter()
        compiled = torch.compile(G, fullgraph=True)(z, noise_mode="const")
        print(f"G torch.compile(fullgraph=True): max diff {(compiled - eager).abs().max():.2e}, "
              f"{time.perf_counter() - start:.0f} s to compile")
        print(f"D torch.compile(fullgraph=True): max diff "
              f"{(torch.compile(D, fullgraph=True)(img) - D(img)).abs().max():.2e}")
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = G(z, noise_mode="const")
            print(f"bf16 autocast: G {out.dtype} finite={bool(torch.isfinite(out).all())}, D {D(out).dtype}")
        last = D(img.contiguous(memory_format=torch.channels_last))
        print(f"channels_last D: max diff {(last - D(img)).abs().max():.2e}")


if __name__ == "__main__":
    main()
