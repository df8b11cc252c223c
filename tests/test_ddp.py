"""DDP on two CPU processes (gloo): ADA's p and the EMA generator stay identical on both ranks, while each
rank draws its own latents; the checkpoint keeps every rank's random state."""

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict
from same_state import training_state_differences
from train_config import TINY, compose_train

from magnet.nn.checkpoint import read_checkpoint
from train import train

ROOT = Path(__file__).resolve().parents[1]


class DumpRankState(pl.Callback):
    """At the end of training, each rank writes its ADA p, image count and EMA weights."""

    def __init__(self, folder: str):
        self.folder = folder

    def on_train_end(self, trainer, pl_module):
        state = {"p": pl_module.augment.p.clone(), "nimg": pl_module.nimg.clone(),
                 "g_ema": {k: v.clone() for k, v in pl_module.g_ema.state_dict().items()},
                 "G": {k: v.clone() for k, v in pl_module.G.state_dict().items()},
                 "lr": [group["lr"] for opt in trainer.optimizers for group in opt.param_groups],
                 "world_size": trainer.world_size}
        torch.save(state, Path(self.folder) / f"rank{trainer.global_rank}.pt")


def _train_on_two_ranks(tmp_path, tiny_paintings, *overrides):
    """Train under DDP on two CPU processes into `tmp_path/run`; each rank's final state (DumpRankState)."""
    cfg = compose_train(tmp_path / "run", tiny_paintings, "trainer=ddp_sim", "data.batch_size=2", *overrides)
    with open_dict(cfg):
        cfg.callbacks.dump = {"_target_": "test_ddp.DumpRankState", "folder": str(tmp_path)}
    train(cfg)
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def test_ddp_spawn_keeps_ranks_in_step(tmp_path, tiny_paintings):
    rank0, rank1 = _train_on_two_ranks(tmp_path, tiny_paintings, "model.total_kimg=0.032",
                                       "model.augment.ada_kimg=0.01", "model.augment.ada_interval=2")
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert int(rank0["nimg"]) == int(rank1["nimg"]) == 32  # images counted over both ranks
    assert float(rank0["p"]) > 0 and torch.equal(rank0["p"], rank1["p"])
    assert all(torch.equal(v, rank1["g_ema"][k]) for k, v in rank0["g_ema"].items())
    rng = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])  # one stream per rank


def test_ddp_ranks_agree_on_an_lr_rampdown_that_follows_the_clock(tmp_path, tiny_paintings):
    # total_kimg is out of reach: trainer.max_time ends the run, and the rates follow each rank's clock
    rank0, rank1 = _train_on_two_ranks(tmp_path, tiny_paintings, "model.total_kimg=1000",
                                       "+trainer.max_time=00:00:00:12", "model.lr_rampdown=1.0")
    assert rank0["lr"] == rank1["lr"] and all(lr < 0.002 for lr in rank0["lr"])  # 0 if the clock ran out first
    assert all(torch.equal(v, rank1["G"][k]) for k, v in rank0["G"].items())


def test_ddp_resume_from_a_periodic_checkpoint_is_exact(tmp_path, tiny_paintings):
    # 6 global batches of 2 x 2, epochs of 4; ADA moves p after batch 4, R1 and path length every 2 batches
    ddp = ["trainer=ddp_sim", "data.batch_size=2", "model.total_kimg=0.024", "model.augment.ada_kimg=0.1",
           "callbacks.kimg_checkpoint.every_kimg=0.012"]
    train(compose_train(tmp_path / "full", tiny_paintings, *ddp))
    periodic = tmp_path / "full" / "checkpoints" / "kimg000000.012.ckpt"  # batch 3: mid-epoch, mid ADA interval
    train(compose_train(tmp_path / "resumed", tiny_paintings, *ddp, f"ckpt_path={periodic}"))
    expected = tmp_path / "full" / "checkpoints" / "last.ckpt"
    got = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    assert int(read_checkpoint(got)["state_dict"]["nimg"]) == 24
    assert float(read_checkpoint(got)["state_dict"]["augment.p"]) > 0
    assert training_state_differences(expected, got) == []  # networks, optimizers, both ranks' RNG


class LogRank(pl.Callback):
    """Logs which rank trains, through the root logger that Hydra sends to the run's log file."""

    def on_train_start(self, trainer, pl_module):
        logging.getLogger(__name__).info("rank %d trains", trainer.global_rank)


def _ddp_command(log_dir: Path, image_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "train.py", *TINY, f"data.image_dir={image_dir}", f"paths.log_dir={log_dir}",
            "model.total_kimg=0.008", "~callbacks.samples", "trainer=ddp", "trainer.accelerator=cpu",
            "+callbacks.probe._target_=test_ddp.LogRank", *overrides]


def _env(**variables) -> dict:
    tests = str(Path(__file__).parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in variables.items()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_one_run_folder_of_rank_zero(log_dir: Path, name: str | None = None) -> Path:
    (run,) = (log_dir / "train" / "runs").iterdir()  # one folder for all ranks
    assert name is None or run.name == name
    log = (run / "train.log").read_text()
    assert "rank 0 trains" in log and "rank 1 trains" not in log  # rank 1 logs to its console only
    assert (run / ".hydra" / "config.yaml").is_file()
    assert len(read_checkpoint(run / "checkpoints" / "last.ckpt")["rng"]) == 2  # two ranks trained
    return run


@pytest.mark.slow
def test_slurm_tasks_on_two_nodes_share_rank_zeros_run_folder(tmp_path, tiny_paintings):
    """As `srun python train.py trainer=ddp trainer.num_nodes=2` in an sbatch of 2 nodes, 1 task each starts it:
    every task composes the config on its own, and Lightning's SLURM environment gives the ranks."""
    slurm = {"SLURM_JOB_ID": 4242, "SLURM_STEP_ID": 0, "SLURM_JOB_NAME": "magnet", "SLURM_NTASKS": 2,
             "SLURM_STEP_NUM_TASKS": 2, "SLURM_NTASKS_PER_NODE": 1, "SLURM_NNODES": 2, "SLURM_LOCALID": 0,
             "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": _free_port()}
    command = _ddp_command(tmp_path, tiny_paintings, "trainer.devices=1", "trainer.num_nodes=2")
    tasks = [subprocess.Popen(command, cwd=ROOT, env=_env(**slurm, SLURM_PROCID=rank, SLURM_NODEID=rank),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [task.communicate(timeout=600)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    _check_one_run_folder_of_rank_zero(tmp_path, "slurm-4242.0")


@pytest.mark.slow
def test_lightnings_launcher_children_write_nothing_of_their_own(tmp_path, tiny_paintings):
    """`python train.py trainer=ddp trainer.devices=2`: Lightning starts rank 1 again from the command line."""
    done = subprocess.run(_ddp_command(tmp_path, tiny_paintings, "trainer.devices=2"), cwd=ROOT,
                          env=_env(MASTER_PORT=_free_port()), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_one_run_folder_of_rank_zero(tmp_path)


def test_multi_node_config_composes():
    cfg = compose_train(Path("unused"), Path("unused"), "trainer=ddp", "trainer.num_nodes=4", "trainer.devices=8")
    assert (cfg.trainer.num_nodes, cfg.trainer.devices, cfg.trainer.accelerator) == (4, 8, "gpu")
    assert cfg.trainer.strategy.startswith("ddp")
    assert cfg.trainer.use_distributed_sampler is False  # the datamodule shards by global rank itself


@pytest.mark.parametrize(("variables", "first"), [
    ({}, True), ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True), ({"SLURM_PROCID": "0"}, True),
    ({"LOCAL_RANK": "1"}, False),                       # Lightning's launcher, second GPU
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),     # Lightning's launcher, first GPU of the second node
    ({"RANK": "5", "LOCAL_RANK": "1"}, False),          # torchrun
    ({"SLURM_PROCID": "3", "SLURM_LOCALID": "0"}, False),  # srun, first task of a later node
])
def test_rank_zero_is_read_from_every_launchers_variables(monkeypatch, variables, first):
    from magnet.ranks import RANK_VARIABLES, is_rank_zero

    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert is_rank_zero() is first


@pytest.mark.parametrize(("variables", "name"), [
    ({}, "stamp"),
    ({"SLURM_JOB_ID": "77", "SLURM_NTASKS": "1"}, "stamp"),  # a one-task job: its own clock is the run's
    ({"SLURM_JOB_ID": "77", "SLURM_NTASKS": "8", "SLURM_STEP_ID": "2"}, "slurm-77.2"),
    ({"SLURM_JOB_ID": "77", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "1"}, "stamp"),  # srun -n 1 in a big job
    ({"TORCHELASTIC_RUN_ID": "none"}, "stamp"), ({"TORCHELASTIC_RUN_ID": "a1b2"}, "torchrun-a1b2"),
    ({"MAGNET_RUN_NAME": "mine", "SLURM_JOB_ID": "77", "SLURM_NTASKS": "8"}, "mine"),
])
def test_every_process_of_a_run_names_the_same_folder(monkeypatch, variables, name):
    from magnet.ranks import shared_run_name

    for key in ("MAGNET_RUN_NAME", "SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_ID",
                "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert shared_run_name("stamp") == name
