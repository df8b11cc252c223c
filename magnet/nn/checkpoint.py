"""Read generator and discriminator weights from checkpoints: rosinality's / MAGnet's and ours.

Checkpoints from strangers are pickles, so everything is read with `weights_only=True`; the one class a
rosinality checkpoint needs beyond tensors and containers, `argparse.Namespace` (its `args`), is
allow-listed and nothing else. The architecture is read off the tensor shapes (each width by a vote of the
tensors that show it, so one missing or bad tensor is named rather than misread), and two configs are the
same architecture when they give every layer the same width. Every refusal is one line naming the file.
Other formats (NVlabs' and TensorFlow StyleGAN2's network pickles, safetensors) are told by their first bytes
and read by magnet.models into the same layout.
"""

import argparse
import itertools
import re
import zipfile
from collections import Counter
from dataclasses import fields, replace

import torch
from torch import nn

from magnet.errors import MissingFileError, UserError
from magnet.models.resolve import resolve_checkpoint

from .config import NetworkConfig
from .discriminator import Discriminator
from .generator import Generator

# rosinality stores its constant FIR and Haar filters as buffers; ours are not saved.
_CONSTANT_FILTER = re.compile(r"(^|\.)(kernel|ll|lh|hl|hh)$")
_MULTIPLIERS = (1, 2, 4, 8, 16, 32)
_LIGHTNING_NAMES = {"g": "G", "d": "D"}  # our LightningModule's attributes for rosinality's networks
_GENERATORS = ("g_ema", "g")


def read_checkpoint(path) -> dict:
    """Load a checkpoint file safely onto the CPU, with errors that say what is wrong and what to do."""
    path = resolve_checkpoint(path)  # also a published model's name, hf://owner/repo/file or a URL
    if path.is_dir():
        found = sorted(path.glob("*.pt")) + sorted(path.glob("*.ckpt")) + sorted(path.glob("checkpoints/*.ckpt"))
        hint = f" such as {found[-1]}" if found else ""
        raise MissingFileError(f"checkpoint {path} is a folder, not a file; give the path of a checkpoint file{hint}")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is an empty file (0 bytes), written incompletely; use another one")
    from magnet.models.formats import foreign_reader  # lazily: magnet.nn does not depend on magnet.models

    if (read_foreign := foreign_reader(path)) is not None:
        return read_foreign(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's readers fail with many types on files that are not checkpoints
        # torch names the global two ways: unknown ones, and those of modules it blocks (os, subprocess, ...)
        if found := re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(err)):
            raise UserError(
                f"checkpoint {path} holds code ({found.group(1)}), not only weights, so magnet will not load it; "
                "use a checkpoint of tensors (rosinality's, MAGnet's or one written by magnet)"
            ) from err
        kind = "a zip archive but" if zipfile.is_zipfile(path) else "corrupt, cut short or"
        raise UserError(
            f"checkpoint {path} is {kind} not a PyTorch checkpoint; give a .pt/.ckpt file saved by torch.save"
        ) from err
    if not isinstance(ckpt, dict):
        raise UserError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a checkpoint dict of networks")
    return ckpt


def _is_ours(ckpt: dict) -> bool:
    """A Lightning checkpoint written by magnet's training (networks under `state_dict` as G., D., g_ema.)."""
    state = ckpt.get("state_dict")
    return isinstance(state, dict) and any(k.startswith(("G.", "g_ema.")) for k in state)


def describe_contents(ckpt: dict) -> str:
    """What a checkpoint holds, in a few words for error messages."""
    if isinstance(ckpt.get("converted_from"), str):  # set by magnet.models' readers of other formats
        return ckpt["converted_from"]
    if _is_ours(ckpt):
        return "a training checkpoint written by magnet"
    if isinstance(ckpt.get("state_dict"), dict):
        modules = sorted({k.split(".")[0] for k in ckpt["state_dict"]})
        return f"a Lightning checkpoint of another model (modules {', '.join(modules[:5]) or 'none'})"
    networks = [k for k in (*_GENERATORS, "d") if isinstance(ckpt.get(k), dict)]
    if networks:
        kind = "a generator checkpoint" if set(networks) & set(_GENERATORS) else "a checkpoint"
        return f"{kind} in rosinality/MAGnet's layout ({', '.join(networks)})"
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return f"a bare state dict of {len(ckpt)} tensors"
    return f"a dict with keys {_few(sorted(map(str, ckpt)))}"


def _find_state(ckpt: dict, key: str) -> dict | None:
    if isinstance(ckpt.get(key), dict):
        state = ckpt[key]
    elif isinstance(ckpt.get("state_dict"), dict):
        prefix = f"{_LIGHTNING_NAMES.get(key, key)}."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt
    else:
        return None
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not _CONSTANT_FILTER.search(k)} or None


def network_state(ckpt: dict, key: str, path="checkpoint") -> dict[str, torch.Tensor]:
    """The state dict of one network (`g_ema`, `g` or `d`) without rosinality's constant filters.

    Accepts rosinality's layout (`ckpt[key]`), a Lightning checkpoint of ours (`state_dict` with the
    module's prefix: `G.`, `D.`, `g_ema.`) and a bare state dict.
    """
    state = _find_state(ckpt, key)
    if state is None:
        raise UserError(
            f"checkpoint {path} holds no '{key}' network: it is {describe_contents(ckpt)}; "
            "give a rosinality/MAGnet checkpoint or one written by magnet's training"
        )
    return state


# ---------------------------------------------------------------- the architecture, from the shapes


def _few(names: list, n: int = 3, sep: str = ", ") -> str:
    """'a, b, c and 4 more'."""
    shown = sep.join(map(str, names[:n]))
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _vote(values) -> int | None:
    """The most common of the values that are known (None when none is)."""
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def _dim(state: dict, *candidates: tuple[str, int]) -> int | None:
    """A size that several tensors show, as (key, dim) pairs: the most common among those present."""
    return _vote(state[k].shape[d] for k, d in candidates if k in state and state[k].ndim > max(d, -1 - d))


def _last_index(state: dict, pattern: str) -> int | None:
    """The largest N in the keys matching `pattern` (one group of digits)."""
    indices = [int(m.group(1)) for k in state if (m := re.match(pattern, k))]
    return max(indices) if indices else None


def _plus(value: int | None, offset: int, divisor: int = 1) -> int | None:
    return None if value is None else value // divisor + offset


def _widths_to_config(widths: dict[int, int], **fields) -> NetworkConfig:
    """Find the channel multiplier and cap that reproduce the observed widths per resolution."""
    channel_max = max(widths.values())
    for multiplier in _MULTIPLIERS:
        config = NetworkConfig(channel_multiplier=multiplier, channel_max=channel_max, **fields)
        if all(config.channels(res) == width for res, width in widths.items()):
            return config
    raise UserError(f"unsupported channel layout {widths}: no channel_multiplier/channel_max gives it")


def _config(state: dict, where: str, candidates: dict[int, list], **known) -> NetworkConfig:
    """The config with the widths that the tensors in `candidates` (resolution -> (key, dim) pairs) show."""
    widths = {res: _dim(state, *pairs) for res, pairs in candidates.items()}
    unknown = [candidates[res][0][0] for res, width in widths.items() if width is None]
    unknown += [name for name, value in known.items() if value is None]
    if unknown:
        raise UserError(f"{where} lacks the tensors that give its shape ({_few(unknown)}): the file is incomplete")
    try:
        return _widths_to_config(widths, **known)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from err


def infer_generator_config(state: dict, where: str = "the state dict") -> NetworkConfig:
    """Architecture, size and widths of a generator, read off its tensor shapes."""
    n_mlp = _last_index(state, r"style\.(\d+)\.")  # style.0 is the PixelNorm
    if n_mlp is None or not any(k.startswith(("conv1.", "to_rgb1.")) for k in state):
        raise UserError(f"{where} is not a StyleGAN2/SWAGAN generator (no mapping network or ToRGB); "
                        "give a rosinality/MAGnet checkpoint or one written by magnet's training")
    n_blocks = _vote([_plus(_last_index(state, r"to_rgbs\.(\d+)\."), 1),
                      _plus(_last_index(state, r"convs\.(\d+)\."), 1, 2),
                      _plus(_last_index(state, r"noises\.noise_(\d+)$"), 0, 2)]) or 0
    bands = _dim(state, ("to_rgb1.conv.weight", 1), ("to_rgb1.bias", 1),
                 *[(f"to_rgbs.{b}.{t}", 1) for b in range(n_blocks) for t in ("bias", "conv.weight")])
    candidates = {4: [("conv1.activate.bias", 0), ("conv1.conv.weight", 1), ("conv1.conv.weight", 2),
                      ("input.input", 1), ("to_rgb1.conv.weight", 2), ("convs.0.conv.weight", 2)]}
    for b in range(n_blocks):
        up, conv = f"convs.{2 * b}.", f"convs.{2 * b + 1}."
        candidates[2 ** (b + 3)] = [(up + "activate.bias", 0), (up + "conv.weight", 1), (conv + "activate.bias", 0),
                                    (conv + "conv.weight", 1), (conv + "conv.weight", 2),
                                    (f"to_rgbs.{b}.conv.weight", 2), (f"convs.{2 * b + 2}.conv.weight", 2)]
    wavelet = bands == 12
    return _config(state, where, candidates, arch="swagan" if wavelet else "stylegan2",
                   size=2 ** (n_blocks + 2 + wavelet),
                   style_dim=_dim(state, ("style.1.weight", 1), ("conv1.conv.modulation.weight", 1),
                                  ("to_rgb1.conv.modulation.weight", 1)), n_mlp=n_mlp)


def infer_discriminator_config(state: dict, where: str = "the state dict") -> tuple[NetworkConfig, int]:
    """Architecture, size and widths of a discriminator, and its FromRGB kernel size (SWAGAN)."""
    epilogue = [("final_conv.0.weight", 0), ("final_conv.1.bias", 0), ("final_linear.0.bias", 0),
                ("final_linear.1.weight", 1)]
    if any(k.startswith("from_rgbs.") for k in state):
        n_from_rgb = _vote([_plus(_last_index(state, r"from_rgbs\.(\d+)\."), 1),
                            _plus(_last_index(state, r"convs\.(\d+)\."), 2)])
        log_size = n_from_rgb + 1
        kernel = _dim(state, *[(f"from_rgbs.{i}.conv.0.weight", -1) for i in range(n_from_rgb)])
        candidates = {2 ** (log_size + 1): [("from_rgbs.0.conv.0.weight", 0), ("from_rgbs.0.conv.1.bias", 0),
                                            ("convs.0.conv1.0.weight", 0), ("convs.0.conv1.0.weight", 1),
                                            ("convs.0.conv1.1.bias", 0), ("convs.0.conv2.1.weight", 1)]}
        for j in range(n_from_rgb - 1):  # block j halves the features to 2 ** (log_size - 1 - j)
            candidates[2 ** (log_size - 1 - j)] = [
                (f"convs.{j}.conv2.1.weight", 0), (f"convs.{j}.conv2.2.bias", 0),
                (f"from_rgbs.{j + 1}.conv.0.weight", 0), (f"from_rgbs.{j + 1}.conv.1.bias", 0),
                (f"convs.{j + 1}.conv1.0.weight", 0), (f"convs.{j + 1}.conv1.1.bias", 0)]
        candidates[4] = candidates.get(4, []) + epilogue
        return _config(state, where, candidates, arch="swagan", size=2 ** (log_size + 1)), kernel
    if any(k.startswith(("convs.0.0.", "convs.0.1.", "final_")) for k in state):
        log_size = _plus(_last_index(state, r"convs\.(\d+)\."), 2) or 2
        candidates = {2**log_size: [("convs.0.0.weight", 0), ("convs.0.1.bias", 0), ("convs.1.conv1.0.weight", 0),
                                    ("convs.1.conv1.0.weight", 1), ("convs.1.conv1.1.bias", 0),
                                    ("convs.1.skip.1.weight", 1)]}
        for j in range(1, log_size - 1):  # block j halves the features to 2 ** (log_size - j)
            candidates[2 ** (log_size - j)] = [
                (f"convs.{j}.conv2.1.weight", 0), (f"convs.{j}.conv2.2.bias", 0), (f"convs.{j}.skip.1.weight", 0),
                (f"convs.{j + 1}.conv1.0.weight", 0), (f"convs.{j + 1}.conv1.1.bias", 0)]
        candidates[4] = candidates.get(4, []) + epilogue
        return _config(state, where, candidates, arch="stylegan2", size=2**log_size), 3
    raise UserError(f"{where} is not a StyleGAN2/SWAGAN discriminator (no FromRGB or epilogue); "
                    "give a checkpoint with one, as rosinality's training and magnet's write")


def _infer(network: str, state: dict, where: str = "the state dict") -> NetworkConfig:
    if network == "generator":
        return infer_generator_config(state, where)
    return infer_discriminator_config(state, where)[0]


def _readable(network: str, state: dict | None) -> NetworkConfig | None:
    try:
        return _infer(network, state) if state else None
    except UserError:
        return None


def checkpoint_config(ckpt: dict) -> tuple[NetworkConfig | None, list[str]]:
    """The config that builds every network in the checkpoint (g_ema or g, and d), and their kinds.

    A 64 px SWAGAN generator's shapes do not depend on the channel multiplier, its discriminator's do:
    reading both finds the one config that fits the file. None when the networks disagree or are unreadable.
    """
    states = {"generator": next(filter(None, (_find_state(ckpt, k) for k in _GENERATORS)), None),
              "discriminator": _find_state(ckpt, "d")}
    found = {network: config for network, state in states.items() if (config := _readable(network, state))}
    if not found or len({(c.arch, c.size) for c in found.values()}) > 1:
        return None, []
    widths = {}
    for network, config in found.items():
        for res, width in config.widths(network).items():
            if widths.setdefault(res, width) != width:
                return None, []
    base = found.get("generator") or found["discriminator"]
    try:
        config = _widths_to_config(widths, arch=base.arch, size=base.size, style_dim=base.style_dim,
                                   n_mlp=base.n_mlp)
    except UserError:
        return None, []
    return config, list(found)


def _fix(ckpt: dict, wanted: NetworkConfig, networks: list[str] | None, setting: str) -> str:
    """What to set so that `wanted` builds the checkpoint's networks (all of them when `networks` is None):
    the fewest fields to change."""
    target, present = checkpoint_config(ckpt)
    if target is not None:
        networks = present if networks is None else networks
        names = [f.name for f in fields(NetworkConfig) if getattr(target, f.name) != getattr(wanted, f.name)]
        for n in range(1, len(names) + 1):
            for subset in itertools.combinations(names, n):
                change = {name: getattr(target, name) for name in subset}
                if all(replace(wanted, **change).shape(k) == target.shape(k) for k in networks):
                    prefix = f"{setting}." if setting else ""
                    return "set " + " ".join(f"{prefix}{k}={v}" for k, v in change.items()) + " to match it"
    return "pick a checkpoint of this architecture"


def _check_architecture(found: NetworkConfig, expected, network: str, ckpt: dict, path, setting: str):
    """The config to build: `expected` when its layers have the widths of the checkpoint's, else an error."""
    if expected is None:
        return found
    whole = isinstance(expected, NetworkConfig)  # the caller builds every network from it
    wanted = expected if whole else replace(found, **{k: v for k, v in expected.items() if v is not None})
    have, want = found.shape(network), wanted.shape(network)
    if have == want:
        return wanted
    diffs = [f"{k} {have[k]}, not {want[k]}" for k in have if k != "channels" and have[k] != want[k]]
    if not diffs:
        diffs = [f"{width} channels at {res} px, not {want['channels'][res]}"
                 for res, width in have["channels"].items() if width != want["channels"][res]]
    asked = f"{setting} asks for" if setting else "asked for"
    fix = _fix(ckpt, wanted, None if whole else [network], setting)
    raise UserError(f"checkpoint {path} holds a {network} {found.describe(network)}, but {asked} "
                    f"{wanted.describe(network)} ({_few(diffs, sep='; ')}); {fix}")


def check_architecture(ckpt: dict, path, config: NetworkConfig, setting: str = "") -> None:
    """Refuse a checkpoint whose generator or discriminator is not built by `config` (before any slow work)."""
    for key, network in (("g", "generator"), ("d", "discriminator")):
        if state := _find_state(ckpt, key):
            found = _infer(network, state, f"checkpoint {path}: '{key}'")
            _check_architecture(found, config, network, ckpt, path, setting)


# ---------------------------------------------------------------- the one loader


def load_state(module: nn.Module, state: dict, path, key: str, optional: tuple[str, ...] = ()) -> list[str]:
    """Copy `state` into `module` once it is checked: no tensor missing (but `optional`), none unexpected,
    every shape right, every value finite. Returns the `optional` keys that the state lacks."""
    network = "generator" if isinstance(module, Generator) else "discriminator"
    where = f"checkpoint {path}: '{key}'"
    what = f"a {network} {module.config.describe(network)}"
    own = module.state_dict()
    missing = [k for k in own if k not in state and k not in optional]
    if missing:
        raise UserError(f"{where} lacks {len(missing)} tensor(s) of {what}: {_few(missing)}; "
                        "the file is incomplete (cut short or edited): use a complete checkpoint")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise UserError(f"{where} has tensors that {what} does not: {_few(unexpected)}; "
                        "it is another network or an edited file: use a checkpoint of this one")
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})" for k, v in state.items()
             if v.shape != own[k].shape]
    if wrong:
        raise UserError(f"{where} has tensors of another shape than {what}: {_few(wrong)}; "
                        "the file was edited or is another network: use a checkpoint of this one")
    refuse_non_finite(state, where)
    module.load_state_dict(state, strict=False)
    return [k for k in optional if k not in state]


def refuse_non_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """A one-line error naming the tensors that hold NaN or Inf."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise UserError(f"{where} has NaN/Inf values in {_few(bad)} (a diverged training or a damaged file); "
                        "use an earlier checkpoint")


def with_recorded_clamp(ckpt: dict, config: NetworkConfig, path) -> NetworkConfig:
    """`config` with the conv clamp that the checkpoint's networks compute with, where the file records one
    (ours, NVlabs' pickles, our exports): the tensor shapes cannot show it."""
    network = ckpt.get("network")
    if not isinstance(network, dict) or "conv_clamp" not in network:
        return config
    try:
        return replace(config, conv_clamp=network["conv_clamp"])
    except ValueError as err:
        raise UserError(f"checkpoint {path}: {err}; the file was edited: use a checkpoint written by magnet") from err


def generator_from(ckpt: dict, key: str, path, expected=None, setting: str = "") -> Generator:
    """A checked generator (train mode) from a checkpoint already read; `expected` as in `load_generator`."""
    state = network_state(ckpt, key, path)
    where = f"checkpoint {path}: '{key}'"
    found = infer_generator_config(state, where)
    config = _check_architecture(found, expected, "generator", ckpt, path, setting)
    generator = Generator(with_recorded_clamp(ckpt, config, path))
    if load_state(generator, state, path, key, optional=("w_avg",)):
        latent_avg = ckpt.get("latent_avg")
        if isinstance(latent_avg, torch.Tensor):
            refuse_non_finite({"latent_avg": latent_avg}, f"checkpoint {path}")
            generator.w_avg.copy_(latent_avg.reshape(-1))
        else:
            generator.w_avg.copy_(generator.mean_w())
    return generator


def discriminator_from(ckpt: dict, key: str, path, expected=None, setting: str = "") -> Discriminator:
    """A checked discriminator from a checkpoint already read (MAGnet-era 1x1 FromRGB too)."""
    state = network_state(ckpt, key, path)
    found, from_rgb_kernel = infer_discriminator_config(state, f"checkpoint {path}: '{key}'")
    config = _check_architecture(found, expected, "discriminator", ckpt, path, setting)
    discriminator = Discriminator(with_recorded_clamp(ckpt, config, path), from_rgb_kernel=from_rgb_kernel)
    load_state(discriminator, state, path, key)
    return discriminator


def load_generator(path, key: str = "g_ema", device="cpu", expected=None) -> Generator:
    """A generator in eval mode from a rosinality/MAGnet checkpoint, one of ours, an NVlabs or TensorFlow
    StyleGAN2 network pickle or a safetensors export.

    `expected` (a NetworkConfig, or some of its fields: {"arch": "swagan", "size": 512}) makes a checkpoint
    whose layers have other widths an error naming both. Truncation pulls towards the tracked average w when
    the checkpoint has one, else towards rosinality's `latent_avg`, else towards the mean of w over 10,000
    seeded samples.
    """
    return generator_from(read_checkpoint(path), key, path, expected).eval().to(device)


def load_discriminator(path, key: str = "d", device="cpu", expected=None) -> Discriminator:
    """A discriminator from a rosinality/MAGnet checkpoint or one of ours; `expected` as in `load_generator`."""
    return discriminator_from(read_checkpoint(path), key, path, expected).to(device)


def check_resume_checkpoint(path, network) -> None:
    """Refuse, before anything slow, a `ckpt_path` that training cannot resume: not a training checkpoint of
    magnet's, or one of networks that `network` (model.network's fields) does not build."""
    if path is None:
        return
    ckpt = read_checkpoint(path)
    if not _is_ours(ckpt) or "pytorch-lightning_version" not in ckpt:
        networks = [k for k in (*_GENERATORS, "d") if isinstance(ckpt.get(k), dict)]
        hint = (f"to fine-tune from it use model.init_from={path}" if "d" in networks and len(networks) > 1
                else "give the last.ckpt of a training run (<run>/checkpoints/last.ckpt)")
        raise UserError(f"ckpt_path={path} is {describe_contents(ckpt)}, not a training checkpoint that "
                        f"train.py can resume; {hint}")
    check_architecture(ckpt, path, NetworkConfig(**network), setting="model.network")
