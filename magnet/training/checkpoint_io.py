"""Checkpoint I/O that is atomic on write and safe on read."""

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from magnet.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes go to a temporary file and are renamed into place, so a kill mid-write never leaves a truncated
    checkpoint; reads use `weights_only=True` (magnet's checkpoints hold only tensors and plain containers)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
