"""Training speed, seconds per kimg, of configs measured back to back in one process (rounds alternate cases).

    python benchmarks/bench_train.py --case fp32 "" --case bf16 "trainer.precision=bf16-mixed"
    python benchmarks/bench_train.py --experiment met_cpu --case now "" --case 32px "data.size=32 data.batch_size=32"
    python benchmarks/bench_train.py --device cuda --experiment swagan512 --case bf16 "data=folder data.image_dir=DIR"

Each case is `train.py experiment=<experiment> <overrides>` with sample grids, checkpoints and loggers off;
the timed span starts after `--warmup` batches and covers a multiple of 16 batches (R1 and path length
amortised as in training). Data loads in the main process, so the process's CPU time is all the work:
on shared cores it is a steadier figure than wall time. Ratios are against the first case (medians).
`--device cuda` trains on one GPU (synchronised before each reading); there wall time is the figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from magnet.entrypoints import apply_extras  # noqa: E402
from train import train  # noqa: E402


class KimgTimer(pl.Callback):
    """Wall time and images over the batches after `warmup`, and the first batch's wall time (compiling)."""

    last: KimgTimer | None = None  # the one train() built from the config

    def __init__(self, warmup: int):
        self.warmup, self.start, self.first_start, self.first_batch_s = warmup, None, None, None
        KimgTimer.last = self

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        if self.first_batch_s is None:
            self.first_batch_s = time.perf_counter() - self.first_start
        if int(module.batches) == self.warmup:
            self.start = (time.perf_counter(), time.process_time(), int(module.nimg))
        self.end = (time.perf_counter(), time.process_time(), int(module.nimg))

    def s_per_kimg(self) -> tuple[float, float]:
        """(wall, CPU) seconds per thousand images."""
        kimg = (self.end[2] - self.start[2]) / 1000
        return (self.end[0] - self.start[0]) / kimg, (self.end[1] - self.start[1]) / kimg


def compose_case(experiment: str, overrides: list[str], out: Path, warmup: int, batches: int, device: str = "cpu"):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            f"experiment={experiment}", "logger=csv", "extras.print_config=false", "~callbacks",
            f"paths.data_dir={ROOT / 'data'}", "+trainer.enable_progress_bar=false",
            "+trainer.enable_model_summary=false", "data.num_workers=0",
            f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "trainer.devices=1", *overrides])
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.logger = None
        cfg.callbacks = {"timer": {"_target_": "__main__.KimgTimer", "warmup": warmup}}
        cfg.model.total_kimg = (warmup + batches) * cfg.data.batch_size / 1000
        del cfg.hydra
    return cfg


def time_case(experiment: str, overrides: list[str], warmup: int, batches: int, device: str):
    """(wall, CPU) seconds per kimg and the first batch's seconds."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_case(experiment, overrides, Path(out), warmup, batches, device)
        apply_extras(cfg)  # extras.tf32, as train.py applies it
        train(cfg)
        return (*KimgTimer.last.s_per_kimg(), KimgTimer.last.first_batch_s)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="met_cpu")
    parser.add_argument("--case", nargs=2, action="append", metavar=("NAME", "OVERRIDES"), required=True)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: one GPU")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=4, help="batches before the timed span")
    parser.add_argument("--batches", type=int, default=32, help="timed batches (a multiple of 16)")
    args = parser.parse_args()
    times = {name: [] for name, _ in args.case}
    for r in range(args.rounds):
        for name, overrides in args.case:
            wall, cpu, first = time_case(args.experiment, overrides.split(), args.warmup, args.batches, args.device)
            times[name].append((wall, cpu))
            print(f"round {r + 1} {name}: {wall:.2f} s/kimg wall, {cpu:.2f} CPU, first batch {first:.1f} s",
                  flush=True)
    median = {name: [statistics.median(t[i] for t in runs) for i in (0, 1)] for name, runs in times.items()}
    base = median[args.case[0][0]]
    gpu = f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"\nload average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}{gpu}, "
          f"median of {args.rounds} rounds\n")
    print(f"| case | overrides | s/kimg wall | CPU s/kimg | wall, CPU ratio to {args.case[0][0]} |")
    print("|---|---|---|---|---|")
    for name, overrides in args.case:
        (wall, cpu), ratios = median[name], (median[name][0] / base[0], median[name][1] / base[1])
        print(f"| {name} | `{overrides}` | {wall:.2f} | {cpu:.2f} | {ratios[0]:.2f}, {ratios[1]:.2f} |")


if __name__ == "__main__":
    main()
