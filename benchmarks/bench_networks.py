"""Speed of the networks: generator inference, discriminator forward+backward, one training iteration.

    python benchmarks/bench_networks.py                 # everything, 2 threads, 5 repetitions
    python benchmarks/bench_networks.py --cases g_infer --sizes 256
    python benchmarks/bench_networks.py --cases g_infer --archs swagan --sizes 512 --precisions fp32 bf16 --preview

Prints JSON: for every case min/median/max seconds (per image for inference, per batch otherwise) over
`--reps` runs after a warm-up, peak resident memory of the process that ran it, FLOPs per image
(torch.utils.flop_counter) and the achieved fraction of the measured float32 matmul peak.
Each case runs in a fresh process so that its peak memory is its own. Inference runs in each of
`--precisions` (magnet.precision: the synthesis under autocast, the mapping in float32), with `--preview` also
stopped one block early; a bf16 case reports how far its uint8 images are from float32's.
"""

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from magnet import build_discriminator, build_generator
from magnet.images import to_uint8
from magnet.nn.factory import to_channels_last
from magnet.precision import autocast
from magnet.training.losses import d_logistic_loss, d_r1_loss, g_nonsaturating_loss, g_path_regularize


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, reps, device):
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


class _TotalOnly:
    """Stands in for FlopCounterMode's per-module tracker, which fails inside autograd.grad(create_graph)
    (R1, path length); every FLOP is then counted under "Global", all we report."""

    parents = {"Global"}
    is_bw = False

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalOnly()
    with counter:
        fn()
    return counter.get_total_flops()


def matmul_peak(threads: int, device: str = "cpu", n: int = 2048) -> float:
    """Float32 matrix-multiply throughput in GFLOP/s: the yardstick for the fractions below."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    times = _time(lambda: a @ b, 5, torch.device(device))
    return 2 * n**3 / min(times) / 1e9


def _case(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    kind, arch, size, batch, reps = spec["kind"], spec["arch"], spec["size"], spec["batch"], spec["reps"]
    fmt = torch.channels_last if spec["channels_last"] else torch.contiguous_format
    G = build_generator(arch, size).to(device)
    if spec["channels_last"]:
        to_channels_last(G)  # Module.to(memory_format=) refuses the 5-d modulated weights
    z = torch.randn(batch, G.style_dim, device=device)
    result = dict(kind=kind, arch=arch, size=size, batch=batch)

    if kind == "g_infer":
        G.eval().requires_grad_(False)
        precision, stop_at = spec["precision"], G.image_sizes[-2] if spec["preview"] else None
        result.update(precision=precision, image_px=stop_at or size)

        @torch.no_grad()
        def step(precision=precision):
            ws = G.mapping(z)
            with autocast(precision, device):
                return G.synthesis(ws, noise_mode="const", stop_at=stop_at).float()

        flops = _flops(step) / batch
        times = [t / batch for t in _time(step, reps, device)]
        result["unit"] = "s/image"
        if precision != "fp32":
            diff = to_uint8(step()).float() - to_uint8(step("fp32")).float()
            result.update(uint8_mean_abs_diff_vs_fp32=float(diff.abs().mean()),
                          uint8_max_abs_diff_vs_fp32=float(diff.abs().max()))
    else:
        D = build_discriminator(arch, size).to(device)
        if spec["channels_last"]:
            to_channels_last(D)
        real = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
        opt_g = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99))
        opt_d = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99))
        pl_mean = torch.zeros((), device=device)

        def d_fwd_bwd():
            D.zero_grad(set_to_none=True)
            D(real).sum().backward()

        def d_step():
            with torch.no_grad():
                fake = G(z)
            loss = d_logistic_loss(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()

        def g_step():
            loss = g_nonsaturating_loss(D(G(z)))
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()

        def r1_step():
            img = real.detach().requires_grad_(True)
            loss = d_r1_loss(D(img), img) * 10 / 2 * 16
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()

        def pl_step():
            nonlocal pl_mean
            ws = G.mapping(z[: max(batch // 2, 1)])
            penalty, pl_mean, _ = g_path_regularize(G.synthesis(ws), ws, pl_mean)
            opt_g.zero_grad(set_to_none=True)
            (penalty * 2 * 4).backward()
            opt_g.step()

        steps = {"d_fwd_bwd": d_fwd_bwd, "d_step": d_step, "g_step": g_step, "r1_step": r1_step,
                 "pl_step": pl_step}
        step = steps[kind]
        flops = _flops(step) / batch
        times = _time(step, reps, device)
        result["unit"] = "s/batch"
    result.update(min=min(times), median=statistics.median(times), max=max(times), reps=reps,
                  gflop_per_image=flops / 1e9, peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    if device.type == "cuda":
        result["peak_cuda_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    per_image = result["median"] / (1 if result["unit"] == "s/image" else batch)
    result["achieved_gflops"] = flops / 1e9 / per_image
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["g_infer", "d_fwd_bwd", "train"],
                        help="g_infer, d_fwd_bwd, train (= d_step g_step r1_step pl_step)")
    parser.add_argument("--archs", nargs="+", default=["swagan", "stylegan2"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="generator inference sizes")
    parser.add_argument("--train-size", type=int, default=256, help="size of the D and training cases")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16", "auto"],
                        help="generator inference precisions (magnet.precision)")
    parser.add_argument("--preview", action="store_true", help="also time inference stopped one block early")
    args = parser.parse_args()

    base = dict(batch=args.batch, reps=args.reps, threads=args.threads, device=args.device,
                channels_last=args.channels_last)
    specs = []
    if "g_infer" in args.cases:
        previews = (False, True) if args.preview else (False,)
        specs += [dict(base, kind="g_infer", arch=a, size=s, precision=p, preview=v)
                  for a in args.archs for s in args.sizes for v in previews for p in args.precisions]
    if "d_fwd_bwd" in args.cases:
        specs += [dict(base, kind="d_fwd_bwd", arch=a, size=args.train_size) for a in args.archs]
    if "train" in args.cases:
        steps = ("d_step", "g_step", "r1_step", "pl_step")
        specs += [dict(base, kind=k, arch="swagan", size=args.train_size) for k in steps]

    peak = matmul_peak(args.threads, args.device)
    ctx = mp.get_context("spawn")
    results = []
    for spec in specs:
        with ctx.Pool(1) as pool:
            result = pool.apply(_case, (spec,))
        result["fraction_of_matmul_peak"] = result["achieved_gflops"] / peak
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = dict(machine=platform.processor() or platform.machine(), torch=torch.__version__,
                   device=args.device, threads=args.threads, matmul_peak_gflops=peak, results=results)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
