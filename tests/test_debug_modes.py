"""`debug=fdr|limit|overfit|profiler` each run the real train() and do what they say, on a tiny config."""

import hashlib
from pathlib import Path

import pytest
import pytorch_lightning as pl
from omegaconf import open_dict
from train_config import compose_train

from magnet.nn.checkpoint import read_checkpoint
from train import train


class RecordBatches(pl.Callback):
    """Remembers (epoch, batch index, digest of the images) of every training batch."""

    seen: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        RecordBatches.seen.append((trainer.current_epoch, batch_idx, hashlib.sha1(batch.numpy().tobytes()).hexdigest()))


def _debug_run(tmp_path, tiny_paintings, mode: str, *overrides: str):
    cfg = compose_train(tmp_path / "run", tiny_paintings, f"debug={mode}", *overrides)
    with open_dict(cfg):
        cfg.callbacks.record = {"_target_": "test_debug_modes.RecordBatches"}
    RecordBatches.seen = []
    train(cfg)
    return tmp_path / "run", RecordBatches.seen


def test_fdr_runs_one_batch_and_logs_nothing(tmp_path, tiny_paintings):
    run, seen = _debug_run(tmp_path, tiny_paintings, "fdr")
    assert len(seen) == 1
    assert not (run / "csv").exists()  # Lightning's fast_dev_run turns the loggers off


def test_limit_cuts_epochs_and_still_ends_at_total_kimg(tmp_path, tiny_paintings):
    run, seen = _debug_run(tmp_path, tiny_paintings, "limit", "model.total_kimg=0.024")
    assert [(epoch, index) for epoch, index, _ in seen] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert int(read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]["nimg"]) == 24


def test_overfit_trains_on_the_same_batches_again_and_again(tmp_path, tiny_paintings):
    _, seen = _debug_run(tmp_path, tiny_paintings, "overfit", "model.total_kimg=0.016")
    digests = [digest for _, _, digest in seen]
    assert len(digests) == 4 and digests[:2] == digests[2:] and digests[0] != digests[1]


def test_profiler_writes_the_time_of_each_step(tmp_path, tiny_paintings):
    run, seen = _debug_run(tmp_path, tiny_paintings, "profiler", "model.total_kimg=0.008")
    assert len(seen) == 2
    assert "run_training_batch" in (run / "fit-profiler.txt").read_text()


@pytest.mark.parametrize("mode", ["default", "fdr", "limit", "overfit", "profiler"])
def test_debug_modes_train_on_the_cpu_in_one_process(mode):
    cfg = compose_train(Path("unused"), Path("unused"), f"debug={mode}", "trainer=ddp")  # a GPU setup
    trainer = cfg.trainer
    assert (cfg.task_name, trainer.accelerator, trainer.devices, trainer.num_nodes) == ("debug", "cpu", 1, 1)
    assert cfg.data.num_workers == 0
