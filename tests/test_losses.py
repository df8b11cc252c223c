"""StyleGAN2 losses against hand computations on maps whose gradients are known in closed form."""

import math

import pytest
import torch

from magnet.training.losses import d_logistic_loss, d_r1_loss, g_nonsaturating_loss, g_path_regularize


def test_logistic_losses_match_the_log_sigmoid_formulas():
    real, fake = [2.0, -1.0, 0.5], [0.3, -4.0]
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected_d = -sum(math.log(sigmoid(v)) for v in real) / 3 - sum(math.log(1 - sigmoid(v)) for v in fake) / 2
    expected_g = -sum(math.log(sigmoid(v)) for v in fake) / 2
    real_pred, fake_pred = torch.tensor(real)[:, None], torch.tensor(fake)[:, None]
    assert d_logistic_loss(real_pred, fake_pred).item() == pytest.approx(expected_d, rel=1e-6)
    assert g_nonsaturating_loss(fake_pred).item() == pytest.approx(expected_g, rel=1e-6)


def test_logistic_losses_stay_finite_for_confident_logits():
    confident = torch.tensor([[200.0], [-200.0]])
    assert d_logistic_loss(confident, confident).item() == pytest.approx(200.0, rel=1e-6)
    assert g_nonsaturating_loss(confident).item() == pytest.approx(100.0, rel=1e-6)


def test_r1_of_a_quadratic_discriminator():
    # D(x) = 0.5 * sum_i a_i x_i^2, so dD/dx = a * x and the penalty is mean_n sum_i (a_i x_ni)^2;
    # its gradient w.r.t. a is mean_n 2 a_i x_ni^2 (the graph must be kept for D to learn from R1).
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    a = torch.rand(3, 5, 5, dtype=torch.float64, requires_grad=True)
    real_pred = 0.5 * (a * x.square()).flatten(1).sum(1, keepdim=True)
    penalty = d_r1_loss(real_pred, x)
    expected = (a * x).square().flatten(1).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    penalty.backward()
    assert torch.allclose(a.grad, (2 * a * x.square()).mean(0).detach())


def test_path_length_of_a_linear_generator():
    # img = reshape(M @ ws) per image, so J^T y = M^T y and the path length is sqrt(mean_l |(M^T y)_l|^2).
    torch.manual_seed(0)
    n, n_latent, style_dim, size = 3, 2, 4, 6
    m = torch.randn(3 * size * size, n_latent * style_dim, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(n, n_latent, style_dim, dtype=torch.float64, requires_grad=True)
    img = (ws.flatten(1) @ m.T).view(n, 3, size, size)

    with torch.random.fork_rng():
        torch.manual_seed(7)
        penalty, new_mean, lengths = g_path_regularize(img, ws, mean_path_length=1.5, decay=0.01)
        torch.manual_seed(7)
        y = torch.randn_like(img) / size  # image-sized Gaussian scaled by 1 / sqrt(H * W)

    grad = (y.flatten(1) @ m).view(n, n_latent, style_dim)
    expected_lengths = grad.square().sum(2).mean(1).sqrt()
    expected_mean = 1.5 + 0.01 * (expected_lengths.mean() - 1.5)
    assert torch.allclose(lengths, expected_lengths)
    assert new_mean.item() == pytest.approx(expected_mean.item(), rel=1e-12)
    assert not new_mean.requires_grad
    assert penalty.item() == pytest.approx((expected_lengths - expected_mean).square().mean().item(), rel=1e-10)
    penalty.backward()  # the penalty trains the generator's weights
    assert m.grad is not None and m.grad.abs().sum() > 0


def test_path_length_matches_the_jacobian_norm_on_average():
    # E|J^T y|^2 = |J|_F^2 / (H * W) for y ~ N(0, I / (H * W)): an average over many draws, no shared seed.
    torch.manual_seed(0)
    n_latent, style_dim, size = 2, 4, 8
    m = torch.randn(3 * size * size, n_latent * style_dim, dtype=torch.float64)
    ws = torch.randn(2000, n_latent, style_dim, dtype=torch.float64, requires_grad=True)
    img = (ws.flatten(1) @ m.T).view(-1, 3, size, size)
    _, _, lengths = g_path_regularize(img, ws, 0.0)
    expected = m.square().sum() / (size * size) / n_latent
    assert lengths.square().mean().item() == pytest.approx(expected.item(), rel=0.03)
