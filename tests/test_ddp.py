"""DDP on two CPU processes (gloo): ADA's p and the EMA generator stay identical on both ranks, while each
rank draws its own latents; the checkpoint keeps every rank's random state."""

from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import open_dict
from same_state import training_state_differences
from train_config import compose_train

from magnet.nn.checkpoint import read_checkpoint
from train import train


class DumpRankState(pl.Callback):
    """At the end of training, each rank writes its ADA p, image count and EMA weights."""

    def __init__(self, folder: str):
        self.folder = folder

    def on_train_end(self, trainer, pl_module):
        state = {"p": pl_module.augment.p.clone(), "nimg": pl_module.nimg.clone(),
                 "g_ema": {k: v.clone() for k, v in pl_module.g_ema.state_dict().items()},
                 "world_size": trainer.world_size}
        torch.save(state, Path(self.folder) / f"rank{trainer.global_rank}.pt")


def test_ddp_spawn_keeps_ranks_in_step(tmp_path, tiny_paintings):
    cfg = compose_train(tmp_path / "run", tiny_paintings, "trainer=ddp_sim", "model.total_kimg=0.032",
                        "data.batch_size=2", "model.augment.ada_kimg=0.01", "model.augment.ada_interval=2")
    with open_dict(cfg):
        cfg.callbacks.dump = {"_target_": "test_ddp.DumpRankState", "folder": str(tmp_path)}
    train(cfg)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert int(rank0["nimg"]) == int(rank1["nimg"]) == 32  # images counted over both ranks
    assert float(rank0["p"]) > 0 and torch.equal(rank0["p"], rank1["p"])
    assert all(torch.equal(v, rank1["g_ema"][k]) for k, v in rank0["g_ema"].items())
    rng = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])  # one stream per rank


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
