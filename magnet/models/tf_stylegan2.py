"""The official TensorFlow StyleGAN2 pickles (stylegan2-*-config-f.pkl), read without TensorFlow.

Such a file is a pickled tuple (G, D, Gs) of `dnnlib.tflib.network.Network`s, each a state dict: its
constructor's `static_kwargs`, its `variables` as (name, numpy array) pairs and its sub-networks in
`components`. As NVlabs' legacy.py does, the kwargs become StyleGAN2-ADA's constructor arguments and the
variables its tensors (TF convolutions are (kh, kw, in, out); the upsampling convs are flipped; the
modulation biases are stored minus their initial 1), which `magnet.models.nvlabs` maps onto our networks.
One difference: a D whose kwargs omit `mbstd_group_size` gets TF's own default, 4 (legacy.py leaves it None,
the whole batch).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from magnet.errors import UserError
from magnet.models.nvlabs import NVNetwork, UnsupportedModel, as_dict, check_resolution, mapping_layers, to_checkpoint
from magnet.models.unpickler import NumpyArray, TFNetwork

# TF static kwarg -> (group of the NVlabs kwargs, its name there, TF's default); None: read by no one
_G_KWARGS = {
    "latent_size": ("", "z_dim", 512), "label_size": ("", "c_dim", 0), "dlatent_size": ("", "w_dim", 512),
    "resolution": ("", "img_resolution", 1024), "num_channels": ("", "img_channels", 3),
    "mapping_layers": ("mapping_kwargs", "num_layers", 8), "label_fmaps": ("mapping_kwargs", "embed_features", None),
    "mapping_fmaps": ("mapping_kwargs", "layer_features", None),
    "mapping_nonlinearity": ("mapping_kwargs", "activation", "lrelu"),
    "mapping_lrmul": ("mapping_kwargs", "lr_multiplier", 0.01), "w_avg_beta": ("mapping_kwargs", "w_avg_beta", 0.995),
    "fmap_base": ("synthesis_kwargs", "channel_base", 16384), "fmap_max": ("synthesis_kwargs", "channel_max", 512),
    "num_fp16_res": ("synthesis_kwargs", "num_fp16_res", 0), "conv_clamp": ("synthesis_kwargs", "conv_clamp", None),
    "architecture": ("synthesis_kwargs", "architecture", "skip"),
    "resample_kernel": ("synthesis_kwargs", "resample_filter", [1, 3, 3, 1]),
    "use_noise": ("synthesis_kwargs", "use_noise", True), "nonlinearity": ("synthesis_kwargs", "activation", "lrelu"),
    "truncation_psi": None, "truncation_cutoff": None, "style_mixing_prob": None, "structure": None,
}
_D_KWARGS = {
    "label_size": ("", "c_dim", 0), "resolution": ("", "img_resolution", 1024), "num_channels": ("", "img_channels", 3),
    "architecture": ("", "architecture", "resnet"), "fmap_base": ("", "channel_base", 16384),
    "fmap_max": ("", "channel_max", 512), "num_fp16_res": ("", "num_fp16_res", 0),
    "conv_clamp": ("", "conv_clamp", None), "mapping_fmaps": ("", "cmap_dim", None),
    "nonlinearity": ("block_kwargs", "activation", "lrelu"),
    "resample_kernel": ("block_kwargs", "resample_filter", [1, 3, 3, 1]),
    "freeze_layers": ("block_kwargs", "freeze_layers", 0), "mapping_layers": ("mapping_kwargs", "num_layers", 0),
    "mapping_lrmul": ("mapping_kwargs", "lr_multiplier", 0.1),
    "mbstd_group_size": ("epilogue_kwargs", "mbstd_group_size", 4),
    "mbstd_num_features": ("epilogue_kwargs", "mbstd_num_channels", 1), "structure": None,
}


def is_tf_pickle(data) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(net, TFNetwork) for net in data)


def _kwargs(net: TFNetwork, table: dict, path, key: str) -> dict:
    """StyleGAN2-ADA's constructor arguments from a TF network's static kwargs."""
    given = as_dict(net.state.get("static_kwargs"))
    unknown = [name for name in given if name not in table]
    if unknown:
        raise UnsupportedModel(path, f"a TensorFlow {key} built with {unknown[0]}={given[unknown[0]]!r}")
    kwargs = {}
    for tf_name, target in table.items():
        if target is not None:
            group, name, default = target
            value = given.get(tf_name, default)
            if tf_name == "fmap_base" and isinstance(value, int):
                value *= 2  # TF's width at res is fmap_base / 2^(log2(res) - 1)
            (kwargs.setdefault(group, {}) if group else kwargs)[name] = value
    return kwargs


def _variables(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    """Every variable of a network and its components, by TF's scoped name ('synthesis/8x8/Conv0_up/weight')."""
    variables = net.state.get("variables")
    out = {f"{prefix}{pair[0]}": pair[1] for pair in (variables if isinstance(variables, list) else [])
           if isinstance(pair, tuple | list) and len(pair) == 2}
    for name, component in as_dict(net.state.get("components")).items():
        if isinstance(component, TFNetwork):
            out.update(_variables(component, f"{prefix}{name}/"))
    return out


class _Variables:
    def __init__(self, net: TFNetwork, path, key: str):
        version = net.state.get("version")
        if not isinstance(version, int) or version < 4:
            raise UnsupportedModel(path, f"a TensorFlow {key} of network version {version} (StyleGAN1?)")
        self.values, self.path, self.key = _variables(net), path, key
        if any(re.search(r"(To|From)RGB_lod\d", name) for name in self.values):
            raise UnsupportedModel(path, f"a TensorFlow {key} of the 'orig' (progressive growing) architecture")

    def __call__(self, name: str, ndim: int | None = None) -> np.ndarray:
        value = self.values.get(name)
        value = value.array if isinstance(value, NumpyArray) else None
        if value is None or (ndim is not None and value.ndim != ndim):
            raise UserError(f"pickle {self.path}: {self.key} lacks the TensorFlow variable {name}"
                            f"{f' of {ndim} dimensions' if ndim else ''}; the file is incomplete or edited: "
                            "download it again")
        return value

    def tensor(self, name: str) -> torch.Tensor:
        return _torch(self(name))

    def dense(self, name: str) -> torch.Tensor:
        """(in, out) -> (out, in)."""
        return _torch(self(name, 2).T)

    def conv(self, name: str, flip: bool = False) -> torch.Tensor:
        """(kh, kw, in, out) -> (out, in, kh, kw), flipped in space for TF's transposed (upsampling) convs."""
        value = self(name, 4)
        return _torch((value[::-1, ::-1] if flip else value).transpose(3, 2, 0, 1))


def _torch(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def _generator(net: TFNetwork, path, key: str) -> NVNetwork:
    kwargs = _kwargs(net, _G_KWARGS, path, key)
    var, state = _Variables(net, path, key), {}
    state["mapping.w_avg"] = var.tensor("dlatent_avg")
    for i in range(mapping_layers(kwargs, path, key)):
        state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"] = (var.dense(f"mapping/Dense{i}/weight"),
                                                                        var.tensor(f"mapping/Dense{i}/bias"))
    state["synthesis.b4.const"] = _torch(var("synthesis/4x4/Const/const", 4)[0])

    def layer(theirs: str, scope: str, noise: int | None, flip: bool = False):
        state[f"{theirs}.weight"] = var.conv(f"{scope}/weight", flip)
        state[f"{theirs}.bias"] = var.tensor(f"{scope}/bias")
        state[f"{theirs}.affine.weight"] = var.dense(f"{scope}/mod_weight")
        state[f"{theirs}.affine.bias"] = var.tensor(f"{scope}/mod_bias") + 1
        if noise is not None:
            state[f"{theirs}.noise_strength"] = var.tensor(f"{scope}/noise_strength")
            state[f"{theirs}.noise_const"] = _torch(var(f"synthesis/noise{noise}", 4)[0, 0])

    layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 0)
    layer("synthesis.b4.torgb", "synthesis/4x4/ToRGB", None)
    for log_res in range(3, int(math.log2(check_resolution(kwargs["img_resolution"], path, key))) + 1):
        r = 2**log_res
        layer(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * log_res - 5, flip=True)
        layer(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * log_res - 4)
        layer(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", None)
    return NVNetwork("Generator", key, kwargs, state)


def _discriminator(net: TFNetwork, path, key: str) -> NVNetwork:
    kwargs = _kwargs(net, _D_KWARGS, path, key)
    var, state = _Variables(net, path, key), {}
    size = check_resolution(kwargs["img_resolution"], path, key)
    state[f"b{size}.fromrgb.weight"] = var.conv(f"{size}x{size}/FromRGB/weight")
    state[f"b{size}.fromrgb.bias"] = var.tensor(f"{size}x{size}/FromRGB/bias")
    for log_res in range(int(math.log2(size)), 2, -1):
        r = 2**log_res
        for i, scope in ((0, "Conv0"), (1, "Conv1_down")):
            state[f"b{r}.conv{i}.weight"] = var.conv(f"{r}x{r}/{scope}/weight")
            state[f"b{r}.conv{i}.bias"] = var.tensor(f"{r}x{r}/{scope}/bias")
        state[f"b{r}.skip.weight"] = var.conv(f"{r}x{r}/Skip/weight")
    state["b4.conv.weight"], state["b4.conv.bias"] = var.conv("4x4/Conv/weight"), var.tensor("4x4/Conv/bias")
    for theirs, scope in (("b4.fc", "4x4/Dense0"), ("b4.out", "Output")):
        state[f"{theirs}.weight"], state[f"{theirs}.bias"] = var.dense(f"{scope}/weight"), var.tensor(f"{scope}/bias")
    return NVNetwork("Discriminator", key, kwargs, state)


def read_tf_pickle(data: tuple, path) -> dict:
    """The checkpoint (rosinality's layout) of a TF StyleGAN2 pickle already unpickled by `load_restricted`."""
    g, d, gs = data
    networks = {"g": _generator(g, path, "G"), "d": _discriminator(d, path, "D"), "g_ema": _generator(gs, path, "Gs")}
    return to_checkpoint(networks, path, "a TensorFlow StyleGAN2 network pickle")
