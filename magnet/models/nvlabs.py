"""NVlabs' StyleGAN2-ADA networks (network-snapshot-*.pkl and the published *.pkl) in rosinality's layout.

The pickle is read by `magnet.models.unpickler` as data; its Generator and Discriminator (config-f: skip
generator, resnet discriminator) become the state dicts of our `arch: stylegan2` networks, with NVlabs' `w_avg`
as our truncation average, each layer's `noise_const` as our const noise and their `conv_clamp` recorded in
the checkpoint's `network`. The formulas agree term by term (NVlabs' networks.py): the same equalised gains,
demodulation, noise after it, bias + lrelu * sqrt(2) then the clamp, [1, 3, 3, 1] resampling with the same
padding, the same unflipped transposed-conv weights, resnet blocks scaled by sqrt(0.5), minibatch std over
groups of 4; a mapping trained with another lr multiplier than our 0.01 is rescaled. What our networks cannot
compute (conditional models, StyleGAN3, other architectures or filters) is refused in one line saying so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import torch

from magnet.errors import UserError
from magnet.models.unpickler import PersistentObject
from magnet.nn.checkpoint import infer_discriminator_config, infer_generator_config
from magnet.nn.layers import BLUR_TAPS

OUR_LR_MUL = 0.01  # the mapping network's lr multiplier (magnet.nn.Generator's lr_mlp)
BLUR = list(BLUR_TAPS)
_CLASSES = {"Generator", "MappingNetwork", "FullyConnectedLayer", "SynthesisNetwork", "SynthesisBlock",
            "SynthesisLayer", "ToRGBLayer", "Discriminator", "DiscriminatorBlock", "Conv2dLayer",
            "MinibatchStdLayer", "DiscriminatorEpilogue", "AugmentPipe"}
_NETWORKS = {"G": "g", "D": "d", "G_ema": "g_ema"}  # NVlabs' names -> rosinality's
# The constructor arguments our networks follow and the one value each may have (_FREE: any); an argument
# not listed is refused, as is None where NVlabs would read it as "off" or "the whole batch".
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_DISCRIMINATOR_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                       "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")
_FREE = object()  # any value: it does not change what the network computes in float32, or is read below
_GENERATOR_RULES = {
    "": {"z_dim": _FREE, "c_dim": _FREE, "w_dim": _FREE, "img_resolution": _FREE, "img_channels": 3,
         "mapping_kwargs": _FREE, "synthesis_kwargs": _FREE},
    "mapping_kwargs": {"num_layers": _FREE, "embed_features": _FREE, "layer_features": None, "activation": "lrelu",
                       "lr_multiplier": _FREE, "w_avg_beta": _FREE},
    "synthesis_kwargs": {"channel_base": _FREE, "channel_max": _FREE, "num_fp16_res": _FREE, "conv_clamp": _FREE,
                         "architecture": "skip", "resample_filter": BLUR, "use_noise": True,
                         "activation": "lrelu", "kernel_size": 3, "fp16_channels_last": _FREE,
                         "channels_last": _FREE},
}
_DISCRIMINATOR_RULES = {
    "": {name: _FREE for name in _DISCRIMINATOR_ARGS} | {"img_channels": 3, "architecture": "resnet"},
    "block_kwargs": {"activation": "lrelu", "resample_filter": BLUR, "fp16_channels_last": _FREE,
                     "freeze_layers": _FREE},
    "mapping_kwargs": {name: _FREE for name in ("num_layers", "embed_features", "layer_features", "activation",
                                                "lr_multiplier", "w_avg_beta")},
    "epilogue_kwargs": {"mbstd_group_size": 4, "mbstd_num_channels": 1, "activation": "lrelu"},
}


@dataclass
class NVNetwork:
    """One network in NVlabs' terms: Generator or Discriminator, its name in the file (G_ema, Gs, ...), its
    constructor arguments, its tensors."""

    kind: str
    name: str
    kwargs: dict
    state: dict[str, torch.Tensor]


class UnsupportedModel(UserError):
    """A network our networks cannot compute; `what` says what it is."""

    def __init__(self, path, what: str):
        super().__init__(f"pickle {path} holds {what}, which magnet's networks cannot compute (not supported); "
                         "use an unconditional StyleGAN2 (config-f, skip G, resnet D) of 32 to 1024 px")
        self.what = what


# ---------------------------------------------------------------- persistent objects -> NVNetwork


def as_dict(value) -> dict:
    """`value` when it is a dict (as a well-formed file has it there), else an empty one."""
    return value if isinstance(value, dict) else {}


def mapping_layers(kwargs: dict, path, name: str) -> int:
    """The number of mapping layers in NVlabs' Generator kwargs (8 when not given)."""
    layers = as_dict(kwargs.get("mapping_kwargs")).get("num_layers", 8)
    if not isinstance(layers, int) or layers < 1:
        raise UnsupportedModel(path, f"a {name} with mapping_kwargs.num_layers={layers!r}")
    return layers


def _classes(obj: PersistentObject):
    """Every persistent object in the tree of `obj`, itself first."""
    yield obj
    for child in as_dict(obj.state.get("_modules")).values():
        if isinstance(child, PersistentObject):
            yield from _classes(child)


def _tensors(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a persistent nn.Module: parameters, persistent buffers, then the submodules'."""
    state, out = obj.state, {}
    skip = state.get("_non_persistent_buffers_set")
    skip = skip if isinstance(skip, set) else set()
    for group in ("_parameters", "_buffers"):
        for name, value in as_dict(state.get(group)).items():
            if isinstance(value, torch.Tensor) and name not in skip:
                out[f"{prefix}{name}"] = value
    for name, child in as_dict(state.get("_modules")).items():
        if isinstance(child, PersistentObject):
            out.update(_tensors(child, f"{prefix}{name}."))
    return out


def _network(obj, key: str, path) -> NVNetwork:
    if not isinstance(obj, PersistentObject) or obj.class_name not in ("Generator", "Discriminator"):
        what = obj.class_name if isinstance(obj, PersistentObject) else type(obj).__name__
        raise UserError(f"pickle {path}: {key} is a {what}, not an NVlabs Generator or Discriminator; "
                        "use a network pickle written by StyleGAN2-ADA's training")
    for part in _classes(obj):
        if part.class_name == "SynthesisInput" or (part.class_name == "SynthesisLayer" and (
                "magnitude_ema_beta" in part.state or "use_fp16" in part.state)):
            raise UnsupportedModel(path, "a StyleGAN3 generator (alias-free, config T or R)")
        if part.class_name not in _CLASSES:
            raise UnsupportedModel(path, f"an object of class {part.class_name}, which is not one of StyleGAN2-ADA's "
                                    "networks")
    names = _GENERATOR_ARGS if obj.class_name == "Generator" else _DISCRIMINATOR_ARGS
    args = obj.state.get("_init_args")
    kwargs = {**dict(zip(names, args if isinstance(args, tuple | list) else ())),
              **as_dict(obj.state.get("_init_kwargs"))}
    return NVNetwork(obj.class_name, key, kwargs, {k: v.float() for k, v in _tensors(obj).items()})


def snapshot_networks(data, path) -> tuple[dict[str, NVNetwork], float | None]:
    """The networks of an NVlabs snapshot dict (rosinality's names: g, d, g_ema) and its ADA p, if any."""
    if not isinstance(data, dict) or not any(k in data for k in _NETWORKS):
        what = f"a dict with keys {', '.join(map(str, list(data)[:5]))}" if isinstance(data, dict) \
            else f"a {type(data).__name__}"
        raise UserError(f"pickle {path} holds {what}, not a StyleGAN2 network pickle (NVlabs' dict of G, D, "
                        "G_ema or TensorFlow's (G, D, Gs)); give one of those or a .pt checkpoint")
    networks = {ours: _network(data[theirs], theirs, path) for theirs, ours in _NETWORKS.items() if theirs in data}
    pipe, p = data.get("augment_pipe"), None
    if isinstance(pipe, PersistentObject):
        value = as_dict(pipe.state.get("_buffers")).get("p")
        p = float(value) if isinstance(value, torch.Tensor) and value.numel() == 1 else None
    return networks, p


# ---------------------------------------------------------------- NVNetwork -> our state dicts


def _plain(value):
    """Tuples as lists, so that (1, 3, 3, 1) is the filter [1, 3, 3, 1]."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def _check_kwargs(net: NVNetwork, rules: dict, path):
    """Refuse constructor arguments our networks do not follow, naming the first one."""
    if c_dim := net.kwargs.get("c_dim"):
        raise UnsupportedModel(path, f"a conditional {net.name} (c_dim={c_dim}: it makes images of given class labels)")
    for group, allowed in rules.items():
        values = net.kwargs if not group else as_dict(net.kwargs.get(group))
        for name, value in values.items():
            if name not in allowed:
                raise UnsupportedModel(path, f"a {net.name} built with {group + '.' if group else ''}{name}={value!r}")
            want = allowed[name]
            if want is not _FREE and _plain(value) != want:
                raise UnsupportedModel(path, f"a {net.name} with {group + '.' if group else ''}{name}={value!r} "
                                        f"(magnet's: {want!r})")


class _Reader:
    """Takes NVlabs' tensors by name, so that a missing one is named and none is left over unread."""

    def __init__(self, net: NVNetwork, path):
        self.state, self.path, self.key, self.used = net.state, path, net.name, set()

    def __call__(self, name: str) -> torch.Tensor:
        if name not in self.state:
            raise UserError(f"pickle {self.path}: {self.key} lacks the tensor {name} of its architecture; "
                            "the file is incomplete or edited: download it again")
        self.used.add(name)
        return self.state[name]

    def finish(self):
        taps = torch.tensor(BLUR, dtype=torch.float32)
        blur = torch.outer(taps, taps) / taps.sum() ** 2  # NVlabs' setup_filter: normalised to sum 1
        for name, value in self.state.items():
            if name.endswith("resample_filter") and (value.shape != blur.shape or not torch.allclose(value, blur)):
                raise UnsupportedModel(self.path, f"a {self.key} whose resampling filter {name} is not [1, 3, 3, 1]")
        left = [k for k in self.state if k not in self.used and not k.endswith("resample_filter")]
        if left:
            raise UnsupportedModel(self.path, f"a {self.key} with tensors of another architecture "
                                         f"({', '.join(left[:3])}{' and more' if len(left) > 3 else ''})")


def check_resolution(res, path, name: str) -> int:
    """The resolution of a network, when our networks have it."""
    if res not in [2**i for i in range(5, 11)]:
        raise UnsupportedModel(path, f"a {name} of {res} px (magnet's networks make 32 to 1024 px)")
    return res


def generator_state(net: NVNetwork, path) -> dict[str, torch.Tensor]:
    """Our generator's state dict (rosinality's names) from an NVlabs Generator."""
    _check_kwargs(net, _GENERATOR_RULES, path)
    size = check_resolution(net.kwargs.get("img_resolution"), path, net.name)
    z_dim, w_dim = net.kwargs.get("z_dim"), net.kwargs.get("w_dim")
    if z_dim != w_dim:
        raise UnsupportedModel(path, f"a {net.name} with z_dim {z_dim} != w_dim {w_dim}")
    lr = as_dict(net.kwargs.get("mapping_kwargs")).get("lr_multiplier", 0.01)
    if not isinstance(lr, int | float) or not lr > 0:
        raise UnsupportedModel(path, f"a {net.name} with mapping_kwargs.lr_multiplier={lr!r}")
    take, out = _Reader(net, path), {}
    for i in range(mapping_layers(net.kwargs, path, net.name)):  # weight lr / sqrt(in) * W, bias lr * b: as ours
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight") * (lr / OUR_LR_MUL)
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias") * (lr / OUR_LR_MUL)
    out["w_avg"] = take("mapping.w_avg")
    out["input.input"] = take("synthesis.b4.const")[None]
    noise = itertools.count()

    def layer(ours: str, theirs: str):
        out[f"{ours}.conv.weight"] = take(f"{theirs}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{theirs}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{theirs}.affine.bias")
        out[f"{ours}.noise.weight"] = take(f"{theirs}.noise_strength").reshape(1)
        out[f"{ours}.activate.bias"] = take(f"{theirs}.bias")
        out[f"noises.noise_{next(noise)}"] = take(f"{theirs}.noise_const")[None, None]

    def to_rgb(ours: str, theirs: str):  # NVlabs scales the styles by 1/sqrt(in), we the weight: the same
        out[f"{ours}.conv.weight"] = take(f"{theirs}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{theirs}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{theirs}.affine.bias")
        out[f"{ours}.bias"] = take(f"{theirs}.bias").reshape(1, -1, 1, 1)

    layer("conv1", "synthesis.b4.conv1")
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    for block in range(int(math.log2(size)) - 2):
        res = 2 ** (block + 3)
        layer(f"convs.{2 * block}", f"synthesis.b{res}.conv0")
        layer(f"convs.{2 * block + 1}", f"synthesis.b{res}.conv1")
        to_rgb(f"to_rgbs.{block}", f"synthesis.b{res}.torgb")
    take.finish()
    return out


def discriminator_state(net: NVNetwork, path) -> dict[str, torch.Tensor]:
    """Our stylegan2 discriminator's state dict (rosinality's names) from an NVlabs resnet Discriminator."""
    _check_kwargs(net, _DISCRIMINATOR_RULES, path)
    size = check_resolution(net.kwargs.get("img_resolution"), path, net.name)
    take, out = _Reader(net, path), {}
    out["convs.0.0.weight"], out["convs.0.1.bias"] = take(f"b{size}.fromrgb.weight"), take(f"b{size}.fromrgb.bias")
    for j in range(1, int(math.log2(size)) - 1):  # NVlabs' block b{res}: conv0, conv1 (down), skip (down)
        res = size >> (j - 1)
        out[f"convs.{j}.conv1.0.weight"], out[f"convs.{j}.conv1.1.bias"] = (take(f"b{res}.conv0.weight"),
                                                                             take(f"b{res}.conv0.bias"))
        out[f"convs.{j}.conv2.1.weight"], out[f"convs.{j}.conv2.2.bias"] = (take(f"b{res}.conv1.weight"),
                                                                             take(f"b{res}.conv1.bias"))
        out[f"convs.{j}.skip.1.weight"] = take(f"b{res}.skip.weight")
    for ours, theirs in (("final_conv.0.weight", "b4.conv.weight"), ("final_conv.1.bias", "b4.conv.bias"),
                         ("final_linear.0.weight", "b4.fc.weight"), ("final_linear.0.bias", "b4.fc.bias"),
                         ("final_linear.1.weight", "b4.out.weight"), ("final_linear.1.bias", "b4.out.bias")):
        out[ours] = take(theirs)
    take.finish()
    return out


def _conv_clamp(networks: dict[str, NVNetwork], path):
    clamps = {net.kwargs.get("conv_clamp") if net.kind == "Discriminator"
              else as_dict(net.kwargs.get("synthesis_kwargs")).get("conv_clamp") for net in networks.values()}
    if len(clamps) > 1:
        raise UnsupportedModel(path, f"networks with different conv_clamp ({', '.join(map(str, clamps))})")
    return clamps.pop() if clamps else None


def to_checkpoint(networks: dict[str, NVNetwork], path, converted_from: str, ada_p: float | None = None) -> dict:
    """A checkpoint in rosinality's layout (g, d, g_ema) with `network` (the config, conv_clamp included).

    A G or D that cannot be read is left out, its reason kept in `converted_from` for the error of whoever
    asks for it (a G_ema with an unusual D still generates); a G_ema that cannot be read is the file's error.
    """
    ckpt, config, refused = {}, None, []
    for key, net in networks.items():
        try:
            if net.kind == "Generator":
                ckpt[key] = generator_state(net, path)
                config = config or infer_generator_config(ckpt[key], f"pickle {path}: {net.name}")
            else:
                ckpt[key] = discriminator_state(net, path)
                config = config or infer_discriminator_config(ckpt[key], f"pickle {path}: {net.name}")[0]
        except UserError as err:
            if key == "g_ema" or len(refused) == len(networks) - 1:
                raise
            refused.append(f"its {net.name} is not supported: {err.what}" if isinstance(err, UnsupportedModel)
                           else f"its {net.name} is not readable: {err}")
    names = ", ".join(net.name for key, net in networks.items() if key in ckpt)
    ckpt["converted_from"] = f"{converted_from} ({'; '.join([names, *refused])})"
    ckpt["network"] = replace(config, conv_clamp=_conv_clamp(
        {k: net for k, net in networks.items() if k in ckpt}, path)).to_dict()
    if ada_p is not None:
        ckpt["ada_aug_p"] = ada_p
    return ckpt


def read_snapshot(data, path) -> dict:
    """The checkpoint of an NVlabs network pickle already unpickled by `load_restricted`."""
    networks, p = snapshot_networks(data, path)
    return to_checkpoint(networks, path, "an NVlabs StyleGAN2-ADA network pickle", p)
