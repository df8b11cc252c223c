"""Frechet and kernel (KID) distances between two sets of features, in float64.

Features are extracted (and cached) apart from the distances, so the same code serves Inception and CLIP.
"""

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.kid import KernelInceptionDistance


class _GivenFeatures(nn.Module):
    """A 'feature network' that returns its input, so torchmetrics' metrics accept features directly."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _check(real: Tensor, fake: Tensor) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Expected two (N, D) feature sets; got {list(real.shape)} and {list(fake.shape)}.")
    if min(len(real), len(fake)) < 2:
        raise ValueError(f"Need at least 2 images per set, got {len(real)} real and {len(fake)} generated.")


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID on Inception features).

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), where for factors S = A A^T the last trace is
    the sum of the square roots of the eigenvalues of the symmetric (A1^T A2)(A1^T A2)^T. torchmetrics
    (eigvals) and scipy (sqrtm) of the non-symmetric product take minutes per 2048-d figure on two CPU
    cores; this takes seconds and is exact.
    """
    _check(real, fake)
    real, fake = real.double().cpu(), fake.double().cpu()
    a_real, a_fake = _covariance_factor(real), _covariance_factor(fake)
    cross = a_real.T @ a_fake
    gram = cross @ cross.T if cross.shape[0] <= cross.shape[1] else cross.T @ cross
    trace_sqrt = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt().sum()
    mean_term = (real.mean(0) - fake.mean(0)).square().sum()
    return float(mean_term + a_real.square().sum() + a_fake.square().sum() - 2 * trace_sqrt)


def _covariance_factor(x: Tensor) -> Tensor:
    """A (D, K) matrix A with A A^T the sample covariance of x (N, D), K = min(N, D)."""
    centred = (x - x.mean(0)) / (len(x) - 1) ** 0.5
    if len(x) <= x.shape[1]:  # fewer samples than dimensions: the centred samples are a factor
        return centred.T
    covariance = centred.T @ centred
    factor, info = torch.linalg.cholesky_ex(covariance)
    if info == 0:
        return factor
    eigenvalues, vectors = torch.linalg.eigh(covariance)  # singular: slower, but exact
    return vectors * eigenvalues.clamp(min=0).sqrt()


def kernel_distance(
    real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and standard deviation over random subsets of the unbiased cubic-kernel MMD^2.

    The subset size shrinks to the smaller set when needed, as in NVlabs' metrics; the subsets are drawn
    from `seed` without touching the caller's random state.
    """
    _check(real, fake)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # its warning about keeping all features in memory: that is the point
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double().cpu(), real=True)
    metric.update(fake.double().cpu(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
