"""Random number generator states as plain tensors and containers (checkpoints load with weights_only=True)."""

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def capture_rng() -> dict:
    """This process's python, numpy, torch and CUDA generator states."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }


def restore_rng(state: dict) -> None:
    """Put back what `capture_rng` took."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (an evaluation, a sample grid) without moving the training's random streams, so turning
    it on or off, or resuming past it, leaves training unchanged."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


def offset_seeds(rank: int) -> None:
    """Give each DDP rank its own random stream (NVlabs: seed * gpus + rank), so ranks draw different latents."""
    seed = torch.initial_seed() + rank
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
