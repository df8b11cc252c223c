"""A training order that is a pure function of (seed, epoch, rank), so a resumed run continues it exactly.

Lightning's DistributedSampler reseeds from the global RNG and restarts an interrupted epoch from its
first batch; this sampler shards across ranks itself and can start an epoch part-way through.
"""

import torch
from torch.utils.data import Sampler

from magnet.checks import check_int
from magnet.errors import UserError


class ResumableShuffle(Sampler[int]):
    """Each epoch a permutation fixed by (seed, epoch), cut into whole global batches and shared out by rank.

    The epoch advances with every pass. `resume(batches_done)` places the next pass after the batches
    already trained on (counted over all epochs), whatever Lightning's own epoch counter says: a run
    stopped mid-epoch is counted by Lightning as a finished epoch.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        check_int("batch_size", batch_size, at_least=1)
        check_int("seed", seed, at_least=0)
        if size < batch_size * world_size:
            raise UserError(
                f"{size} images cannot fill one batch of {batch_size} on each of {world_size} process(es); "
                "add images or lower data.batch_size"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def resume(self, batches_done: int) -> None:
        self.epoch, self.skip_batches = divmod(batches_done, self.batches_per_epoch)

    def __iter__(self):
        seed = self.seed * 1_000_003 + self.epoch
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))
        per_rank = order[: len(self) * self.world_size].view(-1, self.world_size, self.batch_size)[:, self.rank]
        start, self.skip_batches = self.skip_batches, 0
        self.epoch += 1
        yield from per_rank[start:].flatten().tolist()
