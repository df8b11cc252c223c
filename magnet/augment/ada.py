"""The ADA controller: moves the augmentation probability p by how sure D is of the real images."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

# p is a probability and is kept below certainty: NVlabs lets it grow past 1.
P_MAX = float(torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)))


class AdaController(nn.Module):
    """Every `interval` batches, raises p if mean(sign(D(real))) exceeds `target`, else lowers it.

    Each adjustment is (images seen in the interval, all ranks) / (kimg * 1000), so p can cross [0, 1) in
    `kimg` thousand images. Each batch's signs are summed over the ranks as they come, so the running sums
    (buffers) are the same on every rank and a resume mid-interval, from rank 0's checkpoint, loses nothing.
    """

    def __init__(
        self,
        target: float = 0.6,  # wanted mean(sign(D(real))): 0 is D unsure, 1 is D overfitting
        interval: int = 4,  # batches between adjustments
        kimg: float = 500.0,  # thousands of images for p to move by 1
    ):
        super().__init__()
        if interval < 1 or kimg <= 0:
            raise ValueError(f"ADA interval={interval} and kimg={kimg} must be positive")
        self.target, self.interval, self.kimg = target, interval, kimg
        # [sum of signs, count]: integers, so exact however long the interval and whatever .to(dtype) casts
        self.register_buffer("signs", torch.zeros(2, dtype=torch.long))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, p: torch.Tensor, real_pred: torch.Tensor) -> float | None:
        """Call once per batch with the pipeline's p (adjusted in place) and D's logits on the augmented
        reals of the main D step. Returns the statistic mean(sign(D(real))) when it adjusts p, else None.
        """
        pred = real_pred.detach()
        batch = torch.stack([pred.sign().sum().long(), torch.tensor(pred.numel(), device=pred.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)
        self.signs += batch.to(self.signs.device)
        self.batches += 1
        if int(self.batches) % self.interval != 0:
            return None
        signs = self.signs.clone()
        self.signs.zero_()
        real_sign = signs[0].double() / signs[1]
        step = torch.sign(real_sign - self.target) * signs[1] / (self.kimg * 1000)
        p.copy_((p + step).clamp(0.0, P_MAX))
        return float(real_sign)
