"""The exponential moving average of the generator's weights, with a half-life counted in images."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of `module` in eval mode, to be kept up to date by `update_ema`."""
    return copy.deepcopy(module).eval().requires_grad_(False)


def ema_beta(batch_size: int, ema_kimg: float, cur_nimg: int = 0, rampup: float | None = None) -> float:
    """Weight kept by the average per step: the old weights decay to half over `ema_kimg` thousand images.

    With `rampup` (NVlabs: 0.05) the half-life is at most `rampup` times the images seen so far, so the
    average forgets the random initialisation quickly early in training.
    """
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema_param <- beta * ema_param + (1 - beta) * param; buffers (noise, statistics) are copied."""
    for (name, p_ema), (name_model, p) in zip(ema.named_parameters(), model.named_parameters(), strict=True):
        if name != name_model:
            raise ValueError(f"EMA parameter {name!r} meets {name_model!r}: the EMA is not a copy of this model")
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)
