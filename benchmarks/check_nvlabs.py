"""Checks our reading of NVlabs' pickles against NVlabs' own code: a Generator and Discriminator built by
stylegan2-ada-pytorch's networks.py (random weights and biases, num_fp16_res=4, conv_clamp=256 as published),
pickled as its training does, loaded by magnet; images with const noise at truncation 1 and 0.7 and D scores
compared in float32 (NVlabs' force_fp32). Also a variant whose biases push activations past the clamp. Needs
a checkout of NVlabs/stylegan2-ada-pytorch (its CPU reference ops suffice); imports its code, copies none.
Exits 1 when a difference passes 1e-3 (the target, for the published settings) or, past the clamp where images
reach the thousands, 1e-5 of the largest value (float32 round-off).

    python benchmarks/check_nvlabs.py --nvlabs ~/src/stylegan2-ada-pytorch [--res 1024 --channel-base 32768
        --channel-max 512 --w-dim 512 --batch 2]   (metfaces' shape; the default is a small 64 px model)
"""

import argparse
import copy
import pickle
import re
import sys
import tempfile
from pathlib import Path

import torch

from magnet import load_discriminator, load_generator

TOLERANCE = 1e-3  # max abs difference, images and scores of the published settings
RELATIVE = 1e-5  # max abs difference over the largest value, wherever values pass 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nvlabs", required=True, type=Path, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=64)
    parser.add_argument("--w-dim", type=int, default=64)
    parser.add_argument("--mapping", type=int, default=8, help="mapping layers (NVlabs' auto config: 2)")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(args.nvlabs))
    from training import networks  # NVlabs' own

    failures = []

    def check(what: str, theirs: torch.Tensor, ours: torch.Tensor, past_clamp: bool) -> None:
        diff, scale = (theirs - ours).abs().max().item(), max(1.0, theirs.abs().max().item())
        ok = diff <= RELATIVE * scale and (past_clamp or diff <= TOLERANCE)
        print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs diff {diff:.2e} (values up to {scale:.1f})")
        if not ok:
            failures.append(what)

    for past_clamp in (False, True):
        torch.manual_seed(0)
        G = networks.Generator(z_dim=args.w_dim, c_dim=0, w_dim=args.w_dim, img_resolution=args.res, img_channels=3,
                               mapping_kwargs={"num_layers": args.mapping},
                               synthesis_kwargs={"channel_base": args.channel_base, "channel_max": args.channel_max,
                                                 "num_fp16_res": 4, "conv_clamp": 256}).eval().requires_grad_(False)
        D = networks.Discriminator(c_dim=0, img_resolution=args.res, img_channels=3, channel_base=args.channel_base,
                                   channel_max=args.channel_max, num_fp16_res=4, conv_clamp=256).eval()
        with torch.no_grad():  # a trained model's values, not the initial zeros and ones
            for name, p in [*G.named_parameters(), *D.named_parameters()]:
                if name.endswith(("bias", "noise_strength")):
                    p.copy_(torch.randn(p.shape) * 0.3 + ("affine" in name))
                if past_clamp and re.search(r"conv\d?\.bias$", name):  # conv layers' own biases: past 256
                    p.add_(400)
            G.mapping.w_avg.copy_(torch.randn(args.w_dim))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network-snapshot.pkl"
            with open(path, "wb") as f:
                pickle.dump(dict(G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None, training_set_kwargs=None), f)
            ours_g, ours_d = load_generator(path), load_discriminator(path).eval()
        z = torch.randn(args.batch, args.w_dim)
        label = "activations past the clamp" if past_clamp else "random weights"
        with torch.no_grad():
            for psi in (1.0, 0.7):
                theirs = G(z, None, truncation_psi=psi, noise_mode="const", force_fp32=True)
                check(f"G, {label}, psi {psi}", theirs, ours_g(z, truncation_psi=psi, noise_mode="const"), past_clamp)
            check(f"D, {label}", D(theirs, None, force_fp32=True), ours_d(theirs), past_clamp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
