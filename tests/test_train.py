"""The real train() on real paintings: outputs, our checkpoints, fine-tuning, bad input (resume: test_resume.py)."""

import csv
import math

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


def test_a_run_that_ends_between_grids_ends_with_a_grid_of_its_final_weights(tmp_path, tiny_paintings):
    run = tmp_path / "run"
    train(compose_train(run, tiny_paintings, "model.total_kimg=0.012"))  # grids every 8 images
    grids = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert grids == ["kimg000000.000.png", "kimg000000.008.png", "kimg000000.012.png"]


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


def test_bf16_mixed_trains_float32_weights_with_float32_gradient_penalties(tmp_path, tiny_paintings, monkeypatch):
    import pytorch_lightning as pl

    import magnet.training.module as module

    calls = {}

    def spy(name):
        original = getattr(module, name)

        def record(*args, **kwargs):
            calls.setdefault(name, []).append((torch.is_autocast_enabled("cpu"), args[0].dtype, args[1].dtype))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, record)

    for name in ("d_logistic_loss", "d_r1_loss", "g_path_regularize"):
        spy(name)
    cfg = compose_train(tmp_path / "run", tiny_paintings, "model.total_kimg=0.016", "trainer.precision=bf16-mixed")
    pl.seed_everything(cfg.seed, workers=True)  # as train() does: the same initial weights
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    start, params = model.state_dict(), [k for k, _ in model.named_parameters() if k.startswith(("G.", "D."))]
    train(cfg)
    # the D and G passes ran in bf16, the penalties (every 2 batches here) in float32 with autocast off
    bf16, fp32 = (True, torch.bfloat16, torch.bfloat16), (False, torch.float32, torch.float32)
    assert calls["d_logistic_loss"] and all(c == bf16 for c in calls["d_logistic_loss"])
    assert len(calls["d_r1_loss"]) == 2 and all(c == fp32 for c in calls["d_r1_loss"])
    assert len(calls["g_path_regularize"]) == 2 and all(c == fp32 for c in calls["g_path_regularize"])
    rows = list(csv.DictReader(open(next((tmp_path / "run").glob("csv/*/metrics.csv")))))
    losses = [float(row[k]) for row in rows for k in ("train/loss_d", "train/loss_g", "train/r1", "train/pl") if row[k]]
    assert len(losses) >= 12 and all(math.isfinite(v) for v in losses)
    state, _ = _state(tmp_path / "run" / "checkpoints" / "last.ckpt")
    weights = [k for k, v in start.items() if k.startswith(("G.", "D.", "g_ema.")) and v.is_floating_point()]
    assert weights and all(state[k].dtype == torch.float32 for k in weights)
    assert params and all(not torch.equal(state[k], start[k]) for k in params)


def test_lr_rampdown_follows_a_cosine_to_zero_over_the_last_part_of_the_run():
    from pytorch_lightning.callbacks import Timer

    from magnet.training.module import lr_scale, run_progress

    # the reference: torch's CosineAnnealingLR over the ramp's 8 steps, from 1 to 0
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    for step in range(9):
        assert lr_scale(0.75 + 0.25 * step / 8, rampdown=0.25) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        cosine.step()
    assert lr_scale(0.5, 0.25) == lr_scale(0.75, 0.25) == 1.0 and lr_scale(0.9, 0.0) == 1.0
    # progress: images against total_kimg, or trainer.max_time's clock, whichever is further
    timer = Timer(duration={"seconds": 100})
    timer.load_state_dict({"time_elapsed": {"train": 60.0}})  # as a resumed run's Timer: 60 s spent
    assert run_progress(3, 10, [timer]) == pytest.approx(0.6)
    assert run_progress(9, 10, [timer]) == pytest.approx(0.9)
    assert run_progress(3, 10, [Timer()]) == pytest.approx(0.3)  # no max_time
    assert run_progress(12, 10, []) == 1.0


def test_training_applies_the_rampdown_to_both_networks(tmp_path, tiny_paintings):
    # 8 batches of 4 images: batch i starts at progress i/8, so the last one trains at the ramp's 3/4
    run = tmp_path / "run"
    train(compose_train(run, tiny_paintings, "model.total_kimg=0.032", "model.lr=0.003", "model.lr_rampdown=0.5"))
    _, (opt_g, opt_d) = _state(run / "checkpoints" / "last.ckpt")
    lazy = 2 / 3  # Adam's lr corrected for regularising every 2 batches (TINY)
    last = 0.5 * (1 + math.cos(math.pi * 0.75))
    for opt in (opt_g, opt_d):
        assert opt["param_groups"][0]["lr"] == pytest.approx(0.003 * lazy * last)
    rows = list(csv.DictReader(open(next(run.glob("csv/*/metrics.csv")))))
    scales = [float(row["train/lr_scale"]) for row in rows if row.get("train/lr_scale")]
    assert scales[0] == 1.0 and scales[-1] == pytest.approx(last)
    assert all(a >= b for a, b in zip(scales, scales[1:]))
