"""The generator EMA: decay per image count, NVlabs' ramp-up, parameters averaged and buffers copied."""

import pytest
import torch
from torch import nn

from magnet.training.ema import ema_beta, make_ema, update_ema


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


# Worked out by hand: 2 ** (-32 / 10000) = exp(-0.0032 ln 2) (MAGnet's batch 32, rosinality's accum at 10 kimg),
# and 2 ** (-32 / 1000) for the half-life 0.05 * 20000 images of NVlabs' ramp-up.
BETA_32_AT_10_KIMG = 0.99778438712
BETA_32_AT_1_KIMG = 0.97806347345


def test_beta_halves_the_old_weights_over_ema_kimg():
    assert ema_beta(32, ema_kimg=10) == pytest.approx(BETA_32_AT_10_KIMG, abs=1e-11)
    assert ema_beta(40, ema_kimg=1) ** 25 == pytest.approx(0.5)  # 25 steps of 40 images = 1 kimg
    assert ema_beta(1000, ema_kimg=1) == pytest.approx(0.5)  # one batch of the half-life itself


def test_rampup_shortens_the_half_life_early_in_training():
    assert ema_beta(32, ema_kimg=10, cur_nimg=0, rampup=0.05) == 0.0  # first step copies the generator
    assert ema_beta(32, ema_kimg=10, cur_nimg=20000, rampup=0.05) == pytest.approx(BETA_32_AT_1_KIMG, abs=1e-11)
    assert ema_beta(32, ema_kimg=10, cur_nimg=10**6, rampup=0.05) == pytest.approx(BETA_32_AT_10_KIMG, abs=1e-11)
    assert ema_beta(32, ema_kimg=10, cur_nimg=0, rampup=None) == pytest.approx(BETA_32_AT_10_KIMG, abs=1e-11)


def test_make_ema_is_a_frozen_independent_copy_in_eval_mode():
    model = small_model()
    ema = make_ema(model)
    assert all(not q.requires_grad for q in ema.parameters())
    assert all(q.requires_grad for q in model.parameters())
    assert not any(m.training for m in ema.modules()) and model.training
    for (name, q), q_ema in zip(model.state_dict().items(), ema.state_dict().values(), strict=True):
        assert torch.equal(q, q_ema), name
        assert q.data_ptr() != q_ema.data_ptr(), name
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(model[0].weight, ema[0].weight)


def test_update_lerps_parameters_and_copies_buffers():
    model = small_model()
    ema = make_ema(model)
    with torch.no_grad():
        for q_ema, q in zip(ema.parameters(), model.parameters(), strict=True):
            q_ema.fill_(2.0)
            q.fill_(4.0)
    model(torch.randn(8, 3))  # training-mode BatchNorm moves its running statistics
    update_ema(ema, model, 0.75)
    for name, _ in model.named_parameters():  # 0.75 * 2 + 0.25 * 4
        assert torch.equal(ema.get_parameter(name), torch.full_like(ema.get_parameter(name), 2.5)), name
    for name, b in model.named_buffers():
        assert torch.equal(ema.get_buffer(name), b), name
    assert int(ema[1].num_batches_tracked) == 1


def test_repeated_updates_converge_with_the_half_life():
    model = nn.Linear(2, 2)
    ema = make_ema(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(0.0)
    for _ in range(25):  # 1 kimg of 40-image batches at ema_kimg = 1: halfway there
        update_ema(ema, model, ema_beta(40, ema_kimg=1))
    assert torch.allclose(ema.weight, torch.full((2, 2), 0.5), atol=1e-5)


def test_update_refuses_a_model_that_is_not_its_source():
    ema = make_ema(small_model())
    with pytest.raises(ValueError, match="not a copy"):
        update_ema(ema, nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Identity(), nn.Linear(4, 2)), 0.5)
