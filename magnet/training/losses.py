"""StyleGAN2's losses as plain functions: logistic GAN loss, R1 penalty and path-length regularisation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator logistic loss: -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))), batch means, in float32."""
    return F.softplus(-real_pred.float()).mean() + F.softplus(fake_pred.float()).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Generator non-saturating loss: -log sigmoid(D(fake)), batch mean, in float32."""
    return F.softplus(-fake_pred.float()).mean()


def d_r1_loss(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """R1 penalty: squared norm of dD/d(real image) per image, batch mean (the caller scales by gamma / 2).

    `real_img` must require grad and `real_pred` come from it; the graph is kept so the penalty trains D.
    """
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def g_path_regularize(
    fake_img: torch.Tensor,
    latents: torch.Tensor,
    mean_path_length: torch.Tensor | float,
    decay: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Path-length penalty: pulls |J_w^T y| (y an image-sized Gaussian) towards its running mean.

    `latents` are the ws (N, n_latent, style_dim) that made `fake_img`. Returns (penalty, new running mean,
    detached; per-image path lengths). The running mean is per process, as in NVlabs.
    """
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = torch.autograd.grad((fake_img * noise).sum(), latents, create_graph=True)
    path_lengths = grad.square().sum(2).mean(1).sqrt()
    mean = torch.as_tensor(mean_path_length, dtype=path_lengths.dtype, device=path_lengths.device)
    new_mean = mean.lerp(path_lengths.mean(), decay)
    penalty = (path_lengths - new_mean).square().mean()
    return penalty, new_mean.detach(), path_lengths
