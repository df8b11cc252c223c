"""Compare two training checkpoints tensor by tensor: what an exact resume must reproduce."""

import torch

from magnet.nn.checkpoint import read_checkpoint


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def training_state_differences(expected_path, got_path) -> list[str]:
    """Names of what differs: state_dict tensors (G, D, G_ema, ADA p and counters, pl_mean, nimg), each
    optimizer's state and param groups, and every rank's random generator states."""
    expected, got = read_checkpoint(expected_path), read_checkpoint(got_path)
    if expected["state_dict"].keys() != got["state_dict"].keys():
        return ["state_dict keys"]
    different = [k for k, v in expected["state_dict"].items() if not _same(v, got["state_dict"][k])]
    for i, (a, b) in enumerate(zip(expected["optimizer_states"], got["optimizer_states"], strict=True)):
        different += [f"optimizer {i} {part}" for part in ("state", "param_groups") if not _same(a[part], b[part])]
    if len(expected["rng"]) != len(got["rng"]):
        return [*different, "rng ranks"]
    for rank, (a, b) in enumerate(zip(expected["rng"], got["rng"])):
        different += [f"rng rank {rank} {name}" for name in a if not _same(a[name], b[name])]
    return different
