"""The real train() on real paintings: outputs, our checkpoints, fine-tuning, bad input (resume: test_resume.py)."""

import csv

import hydra
import pytest
import torch
from train_config import compose_train

from magnet import load_generator
from magnet.errors import UserError
from magnet.nn.checkpoint import read_checkpoint
from train import train


def _state(path):
    """Everything that must survive a resume: weights, EMA, buffers (ADA p, nimg, pl_mean), optimizers."""
    ckpt = read_checkpoint(path)
    return ckpt["state_dict"], ckpt["optimizer_states"]


def test_train_writes_checkpoints_samples_and_metrics(tmp_path, tiny_paintings):
    cfg = compose_train(tmp_path / "run", tiny_paintings, "model.total_kimg=0.016", "logger=many_loggers")
    train(cfg)
    run = tmp_path / "run"
    assert list(run.glob("wandb/offline-run-*/run-*.wandb"))  # W&B, offline by default
    assert list(run.glob("tensorboard/*/events.out.tfevents.*"))
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file() and not list((run / "checkpoints").glob(".*.tmp*"))
    grids = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert grids == ["kimg000000.000.png", "kimg000000.008.png", "kimg000000.016.png"]  # at the start, every 8
    rows = list(csv.DictReader(open(next(run.glob("csv/*/metrics.csv")))))
    logged = {k for row in rows for k, v in row.items() if v}
    assert {"train/loss_d", "train/loss_g", "train/r1", "train/pl", "train/ada_p", "train/kimg",
            "train/D_real_sign"} <= logged
    state, _ = _state(last)
    assert int(state["nimg"]) == 16
    # our checkpoint serves the public API, and gives the EMA generator
    G = load_generator(last)
    ema = {k.removeprefix("g_ema."): v for k, v in state.items() if k.startswith("g_ema.")}
    assert all(torch.equal(G.state_dict()[k], v) for k, v in ema.items())


def test_fine_tune_from_a_checkpoint_of_another_architecture_fails_early(tmp_path, tiny_paintings):
    train(compose_train(tmp_path / "a", tiny_paintings, "model.total_kimg=0.004"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    cfg = compose_train(tmp_path / "b", tiny_paintings, "model.total_kimg=0.004", "model=stylegan2",
                        f"model.init_from={ckpt}")
    with pytest.raises(UserError, match="^model: checkpoint .* holds a generator swagan 32px.*asks for stylegan2 32px"):
        train(cfg)


def test_fine_tune_starts_from_the_given_weights(tmp_path, tiny_paintings):
    train(compose_train(tmp_path / "a", tiny_paintings, "model.total_kimg=0.004"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    cfg = compose_train(tmp_path / "b", tiny_paintings, f"model.init_from={ckpt}")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    source = read_checkpoint(ckpt)["state_dict"]
    assert torch.equal(model.G.style[1].weight, source["G.style.1.weight"])
    assert torch.equal(model.D.final_linear[1].weight, source["D.final_linear.1.weight"])
    assert torch.equal(model.g_ema.style[1].weight, source["g_ema.style.1.weight"])


def test_fine_tune_from_a_rosinality_checkpoint(tmp_path, tiny_paintings):
    from rosinality_format import save_rosinality

    path = tmp_path / "magnet_era.pt"
    g_state, d_state = save_rosinality(path, "swagan", 32, from_rgb_kernel=1, style_dim=16, n_mlp=2,
                                       channel_multiplier=1, channel_max=16)
    cfg = compose_train(tmp_path / "b", tiny_paintings, f"model.init_from={path}")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    assert torch.equal(model.G.convs[0].conv.weight, g_state["convs.0.conv.weight"])
    assert model.D.from_rgbs[0].conv[0].weight.shape[-1] == 1  # MAGnet-era 1x1 FromRGB, inferred
    assert torch.equal(model.D.from_rgbs[0].conv[0].weight, d_state["from_rgbs.0.conv.0.weight"])
    # Training starts at the source's ADA p (0.1; one batch is too few for the controller to move it).
    train(compose_train(tmp_path / "b", tiny_paintings, f"model.init_from={path}", "model.total_kimg=0.004"))
    trained = read_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["state_dict"]
    assert float(trained["augment.p"]) == pytest.approx(0.1)


def test_a_non_finite_loss_stops_training_with_a_clear_message(tmp_path, tiny_paintings):
    cfg = compose_train(tmp_path / "run", tiny_paintings, "model.total_kimg=0.016", "model.lr=1e30")
    with pytest.raises(FloatingPointError, match=r"became (nan|inf).*last good checkpoint is kept"):
        train(cfg)
