"""Exact resume from every checkpoint training writes: periodic kimg files, last.ckpt, best_fid.ckpt, and
last.ckpt after a real `python train.py` was killed with SIGKILL. Each resumed run must end identical,
tensor for tensor, to the uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from same_state import training_state_differences
from torch import nn
from train_config import TINY, compose_train

from magnet.nn.checkpoint import read_checkpoint
from train import train

ROOT = Path(__file__).resolve().parents[1]
# 10 batches of 4 from the 8 tiny paintings (no mirror images: epochs of 2 batches), a checkpoint every 3;
# R1 every 5 and path length every 3 batches, so both land after every checkpoint; ADA moves p by 0.16
# every 4 batches.
SCHEDULE = ["data.flip=false", "model.d_reg_every=5", "model.g_reg_every=3",
            "model.total_kimg=0.040", "callbacks.kimg_checkpoint.every_kimg=0.012",
            "callbacks.kimg_checkpoint.keep=null"]
RECIPE = [*SCHEDULE, "model.augment.ada_kimg=0.1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_paintings):
    run = tmp_path_factory.mktemp("uninterrupted")
    train(compose_train(run, tiny_paintings, *RECIPE))
    return run / "checkpoints"


def test_periodic_checkpoints_fall_on_every_multiple(uninterrupted):
    names = sorted(p.stem for p in uninterrupted.glob("kimg*.ckpt"))
    assert names == [f"kimg000000.{n:03d}" for n in (12, 24, 36, 40)]  # 40: the end
    assert float(read_checkpoint(uninterrupted / "last.ckpt")["state_dict"]["augment.p"]) > 0


@pytest.mark.parametrize("name", [
    "kimg000000.012",  # batch 3: mid-epoch and mid ADA interval; R1, path length and epoch ends follow
    "kimg000000.024",  # batch 6: the last batch of an epoch
    "last",  # the end of training: a resumed run trains nothing more
])
def test_resume_from_a_checkpoint_ends_as_the_uninterrupted_run(uninterrupted, tiny_paintings, tmp_path, name):
    train(compose_train(tmp_path, tiny_paintings, *RECIPE, f"ckpt_path={uninterrupted / name}.ckpt"))
    got = tmp_path / "checkpoints" / "last.ckpt"
    assert int(read_checkpoint(got)["state_dict"]["nimg"]) == 40
    assert training_state_differences(uninterrupted / "last.ckpt", got) == []


def test_resume_from_the_end_of_a_shorter_run_is_exact(uninterrupted, tiny_paintings, tmp_path):
    # stops after batch 5, mid-epoch and mid ADA interval: its last checkpoint is written as training ends
    train(compose_train(tmp_path / "short", tiny_paintings, *RECIPE, "model.total_kimg=0.020"))
    short = tmp_path / "short" / "checkpoints"
    assert sorted(p.stem for p in short.glob("kimg*.ckpt")) == ["kimg000000.012", "kimg000000.020"]
    train(compose_train(tmp_path / "resumed", tiny_paintings, *RECIPE, f"ckpt_path={short / 'last.ckpt'}"))
    assert training_state_differences(uninterrupted / "last.ckpt", tmp_path / "resumed/checkpoints/last.ckpt") == []


def _train_py(run: Path, data: Path, *overrides: str) -> subprocess.Popen:
    """`python train.py` in the background, its output in `<run>.log`."""
    command = [sys.executable, "train.py", *TINY, f"data.image_dir={data}", f"hydra.run.dir={run}", *RECIPE,
               *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same sums as in this process
    with open(run.with_suffix(".log"), "w") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_resume_after_sigkill_from_last_ckpt_is_exact(uninterrupted, tmp_path, tiny_paintings):
    killed = tmp_path / "killed"
    process = _train_py(killed, tiny_paintings, "model.total_kimg=10")
    first = killed / "checkpoints" / "kimg000000.012.ckpt"
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # whatever it is doing now: training, or writing a checkpoint
    process.wait(timeout=30)
    assert first.exists(), killed.with_suffix(".log").read_text()[-3000:]
    last = killed / "checkpoints" / "last.ckpt"  # complete, and the newest checkpoint
    nimg = int(read_checkpoint(last)["state_dict"]["nimg"])
    assert nimg >= max(round(float(p.stem.removeprefix("kimg")) * 1000) for p in first.parent.glob("kimg*.ckpt"))
    assert nimg < 40, "killed too late to resume"
    resumed = tmp_path / "resumed"
    code = _train_py(resumed, tiny_paintings, f"ckpt_path={last}").wait(timeout=300)
    assert code == 0, resumed.with_suffix(".log").read_text()[-3000:]
    assert training_state_differences(uninterrupted / "last.ckpt", resumed / "checkpoints" / "last.ckpt") == []


class TinyFeatures(nn.Module):
    """Stands in for Inception: its weights are drawn from the global random state at the first evaluation,
    when the real network is built."""

    name = None  # no feature cache

    def __init__(self):
        super().__init__()
        self.net = None

    def forward(self, images):
        if self.net is None:
            self.net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return self.net(images.float() / 255)


def test_resume_from_best_fid_and_across_an_evaluation_is_exact(tmp_path, tiny_paintings):
    # FID (noise_mode random) after batches 2 and 4; a kimg checkpoint after batch 3 (mid-epoch); 5 batches
    fid = ["callbacks=with_fid", "+callbacks.fid.networks.inception._target_=test_resume.TinyFeatures",
           "callbacks.fid.every_kimg=0.008", "callbacks.fid.settings.names=[fid8_full]",
           "callbacks.fid.settings.batch_size=8", "model/augment=fixed", *SCHEDULE, "model.total_kimg=0.020"]
    full = tmp_path / "full"
    train(compose_train(full, tiny_paintings, *fid))
    expected = full / "checkpoints" / "last.ckpt"
    best = full / "checkpoints" / "best_fid.ckpt"
    assert int(read_checkpoint(best)["state_dict"]["nimg"]) in (8, 16)
    for source in (full / "checkpoints" / "kimg000000.012.ckpt", best):
        resumed = tmp_path / source.stem
        train(compose_train(resumed, tiny_paintings, *fid, f"ckpt_path={source}"))
        assert training_state_differences(expected, resumed / "checkpoints" / "last.ckpt") == [], source.name




def test_resume_in_the_middle_of_the_lr_rampdown_is_exact(tiny_paintings, tmp_path):
    ramp = [*RECIPE, "model.lr_rampdown=0.6"]  # both rates fall over batches 6-10 of 10
    train(compose_train(tmp_path / "full", tiny_paintings, *ramp))
    full = tmp_path / "full" / "checkpoints"
    train(compose_train(tmp_path / "resumed", tiny_paintings, *ramp, f"ckpt_path={full / 'kimg000000.024.ckpt'}"))
    assert training_state_differences(full / "last.ckpt", tmp_path / "resumed/checkpoints/last.ckpt") == []
    lrs = [read_checkpoint(full / f"{name}.ckpt")["optimizer_states"][0]["param_groups"][0]["lr"]
           for name in ("kimg000000.012", "kimg000000.024", "last")]
    assert lrs[0] > lrs[1] > lrs[2] > 0  # the resumed run started mid-ramp, and param groups compare above
