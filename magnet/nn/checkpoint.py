"""Read generator and discriminator weights from checkpoints: rosinality's / MAGnet's and ours.

Checkpoints from strangers are pickles, so everything is read with `weights_only=True`; the one class a
rosinality checkpoint needs beyond tensors and containers, `argparse.Namespace` (its `args`), is
allow-listed and nothing else. The architecture is read off the tensor shapes, which cannot disagree with
the weights, so a checkpoint with or without `args` loads the same way.
"""

import argparse
import pickle
import re
from pathlib import Path

import torch

from .config import NetworkConfig
from .discriminator import Discriminator
from .generator import Generator

# rosinality stores its constant FIR and Haar filters as buffers; ours are not saved.
_CONSTANT_FILTER = re.compile(r"(^|\.)(kernel|ll|lh|hl|hh)$")
_MULTIPLIERS = (1, 2, 4, 8, 16, 32)


def read_checkpoint(path) -> dict:
    """Load a checkpoint file safely onto the CPU, with errors that say what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the path of a .pt/.ckpt file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise ValueError(
                f"{path} holds objects that are unsafe to unpickle, so magnet will not load it "
                f"(only tensors, containers and argparse.Namespace are allowed): {err}"
            ) from err
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (corrupt or another format): {err}") from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (truncated or another format): {err}") from err
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
    return ckpt


def network_state(ckpt: dict, key: str, path="checkpoint") -> dict[str, torch.Tensor]:
    """The state dict of one network (`g_ema`, `g` or `d`) without rosinality's constant filters.

    Accepts rosinality's layout (`ckpt[key]`), a Lightning checkpoint of ours (`state_dict` with a
    `key.` prefix) and a bare state dict.
    """
    if isinstance(ckpt.get(key), dict):
        state = ckpt[key]
    elif isinstance(ckpt.get("state_dict"), dict):
        prefix = f"{key}."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt
    else:
        state = {}
    if not state:
        raise ValueError(
            f"{path} holds no '{key}' network (top-level keys: {sorted(ckpt)[:10]}); "
            "expected a rosinality/MAGnet checkpoint or one written by magnet's training"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not _CONSTANT_FILTER.search(k)}


def _widths_to_config(widths: dict[int, int], **fields) -> NetworkConfig:
    """Find the channel multiplier and cap that reproduce the observed widths per resolution."""
    channel_max = max(widths.values())
    for multiplier in _MULTIPLIERS:
        config = NetworkConfig(channel_multiplier=multiplier, channel_max=channel_max, **fields)
        if all(config.channels(res) == width for res, width in widths.items()):
            return config
    raise ValueError(f"unsupported channel layout {widths}: no channel_multiplier/channel_max matches it")


def _count(state: dict, pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for k in state if regex.fullmatch(k))


def infer_generator_config(state: dict) -> NetworkConfig:
    """Architecture, size and widths of a generator, read off its tensor shapes."""
    if "style.1.weight" not in state or "to_rgb1.conv.weight" not in state:
        raise ValueError("these weights are not a StyleGAN2/SWAGAN generator (no mapping network or ToRGB)")
    wavelet = state["to_rgb1.conv.weight"].shape[1] == 12
    n_blocks = _count(state, r"to_rgbs\.\d+\.bias")
    log_size = n_blocks + 2
    widths = {4: state["conv1.activate.bias"].shape[0]}
    widths.update({2 ** (b + 3): state[f"convs.{2 * b}.activate.bias"].shape[0] for b in range(n_blocks)})
    return _widths_to_config(
        widths,
        arch="swagan" if wavelet else "stylegan2",
        size=2 ** (log_size + wavelet),
        style_dim=state["style.1.weight"].shape[1],
        n_mlp=_count(state, r"style\.\d+\.weight"),
    )


def infer_discriminator_config(state: dict) -> tuple[NetworkConfig, int]:
    """Architecture, size and widths of a discriminator, and its FromRGB kernel size (SWAGAN)."""
    if "from_rgbs.0.conv.0.weight" in state:
        n_from_rgb = _count(state, r"from_rgbs\.\d+\.conv\.0\.weight")
        log_size = n_from_rgb + 1
        kernel = state["from_rgbs.0.conv.0.weight"].shape[-1]
        widths = {2 ** (log_size + 1): state["from_rgbs.0.conv.0.weight"].shape[0]}
        widths.update({2 ** (i - 1): state[f"convs.{log_size - i}.conv2.1.weight"].shape[0]
                       for i in range(log_size, 2, -1)})
        return _widths_to_config(widths, arch="swagan", size=2 ** (log_size + 1)), kernel
    if "convs.0.0.weight" in state:
        log_size = _count(state, r"convs\.\d+\.conv1\.0\.weight") + 2
        widths = {2**log_size: state["convs.0.0.weight"].shape[0]}
        widths.update({2 ** (i - 1): state[f"convs.{log_size - i + 1}.conv2.1.weight"].shape[0]
                       for i in range(log_size, 2, -1)})
        return _widths_to_config(widths, arch="stylegan2", size=2**log_size), 3
    raise ValueError("these weights are not a StyleGAN2/SWAGAN discriminator")


def _check_expected(found: NetworkConfig, expected: dict | None, path, what: str):
    """Fail before any training if the checkpoint is not the network the config asks for."""
    if not expected:
        return
    wrong = {k: v for k, v in expected.items() if v is not None and getattr(found, k) != v}
    if wrong:
        asked = ", ".join(f"{k}={v}" for k, v in wrong.items())
        held = ", ".join(f"{k}={getattr(found, k)}" for k in wrong)
        raise ValueError(
            f"{path} holds a {what} {found.describe()}; asked for {asked} (it has {held}). "
            "Point to a checkpoint of that architecture, or change the model config to match it."
        )


def load_generator(path, key: str = "g_ema", device="cpu", expected: dict | None = None) -> Generator:
    """A generator in eval mode from a rosinality/MAGnet checkpoint or one of ours.

    `expected` (e.g. {"arch": "swagan", "size": 512}) makes a mismatch an error naming both sides.
    Truncation pulls towards the tracked average w when the checkpoint has one, else towards
    rosinality's `latent_avg`, else towards the mean of w over 10,000 seeded samples.
    """
    ckpt = read_checkpoint(path)
    state = network_state(ckpt, key, path)
    config = infer_generator_config(state)
    _check_expected(config, expected, path, "generator")
    generator = Generator(config)
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"w_avg"}:
        raise ValueError(f"{path}: '{key}' does not fit {config.describe()}: missing {missing}, "
                         f"unexpected {unexpected}")
    if "w_avg" in missing:
        latent_avg = ckpt.get("latent_avg")
        w_avg = latent_avg.reshape(-1) if isinstance(latent_avg, torch.Tensor) else generator.mean_w()
        generator.w_avg.copy_(w_avg)
    return generator.eval().to(device)


def load_discriminator(path, key: str = "d", device="cpu", expected: dict | None = None) -> Discriminator:
    """A discriminator from a rosinality/MAGnet checkpoint or one of ours (MAGnet-era 1x1 FromRGB too)."""
    ckpt = read_checkpoint(path)
    state = network_state(ckpt, key, path)
    config, from_rgb_kernel = infer_discriminator_config(state)
    _check_expected(config, expected, path, "discriminator")
    discriminator = Discriminator(config, from_rgb_kernel=from_rgb_kernel)
    discriminator.load_state_dict(state)
    return discriminator.to(device)
