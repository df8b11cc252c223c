"""NVlabs- and TensorFlow-shaped network pickles, written from the layout facts for tests (no NVlabs code).

The bytes are built as the real files' are: `pickle.dump` of objects whose `__reduce__` names NVlabs' globals
(torch_utils.persistence._reconstruct_persistent_obj with the module source and the module's `__dict__`,
dnnlib.util.EasyDict, dnnlib.tflib.network.Network), tensors and parameters pickled by torch itself, numpy
float64 attributes. Those modules exist in sys.modules only while a file is written.
References: ../shared/reference/nvlabs_pickle_layout.md; NVlabs' legacy.py for the TF variable names.
"""

import math
import pickle
import re
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch

BLUR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
_FAKE_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util", "dnnlib.tflib",
                 "dnnlib.tflib.network")


def source_that_must_not_run(marker) -> str:
    """Module source a reader that executes it would betray itself by: it writes `marker` and raises."""
    return f"open({str(marker)!r}, 'w').write('executed')\nraise RuntimeError('module source executed')\n"


def _reconstruct_persistent_obj(meta):
    raise AssertionError("only named by the pickles written here")


class EasyDict(dict):
    pass


class Network:
    """A TF network as dnnlib.tflib pickles it: the class, then its state dict."""

    def __init__(self, state):
        self.state = state

    def __getstate__(self):
        return self.state


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"


@contextmanager
def nvlabs_globals():
    """NVlabs' module names, present only while pickling (the reader must never need them)."""
    modules = {name: types.ModuleType(name) for name in _FAKE_MODULES}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    modules["dnnlib.tflib.network"].Network = Network
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in _FAKE_MODULES:
            sys.modules.pop(name, None)


class Persistent:
    """An instance of an NVlabs persistent class, as its decorator pickles it."""

    def __init__(self, class_name: str, state: dict, source: str):
        self.class_name, self.state, self.source = class_name, state, source

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.source, class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


def module_state(params=(), buffers=(), modules=(), **attrs) -> dict:
    """An nn.Module's `__dict__` as torch 2.x pickles it (hook dicts included)."""
    hooks = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
             "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
             "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
             "_load_state_dict_post_hooks")
    return {"training": False, "_parameters": OrderedDict(params), "_buffers": OrderedDict(buffers),
            "_non_persistent_buffers_set": set(), **{h: OrderedDict() for h in hooks},
            "_is_full_backward_hook": None, "_modules": OrderedDict(modules), **attrs}


_BUFFERS = ("resample_filter", "noise_const", "w_avg", "p")
_G_CLASSES = [(r"", "Generator"), (r"mapping", "MappingNetwork"), (r"mapping\.fc\d+", "FullyConnectedLayer"),
              (r"synthesis", "SynthesisNetwork"), (r"synthesis\.b\d+", "SynthesisBlock"),
              (r"synthesis\.b\d+\.conv\d", "SynthesisLayer"), (r"synthesis\.b\d+\.torgb", "ToRGBLayer"),
              (r".*\.affine", "FullyConnectedLayer"), (r"mapping\.embed", "FullyConnectedLayer"),
              (r"synthesis\.b\d+\.skip", "Conv2dLayer")]
_D_CLASSES = [(r"", "Discriminator"), (r"b4", "DiscriminatorEpilogue"), (r"b\d+", "DiscriminatorBlock"),
              (r"b4\.(fc|out)", "FullyConnectedLayer"), (r"b4\.mbstd", "MinibatchStdLayer"),
              (r"b\d+\.\w+", "Conv2dLayer")]


def _attrs(class_name: str, tensors: dict) -> dict:
    """A few of the plain attributes NVlabs' layers carry (numpy float64 gains, as in the real files)."""
    weight = tensors.get("weight")
    if weight is None:
        return {}
    fan_in = int(np.prod(weight.shape[1:]))
    if class_name in ("FullyConnectedLayer", "Conv2dLayer", "ToRGBLayer"):
        return {"weight_gain": np.float64(1 / np.sqrt(fan_in)), "activation": "lrelu"}
    return {"act_gain": np.float64(np.sqrt(2)), "activation": "lrelu", "use_noise": True}


def build_tree(flat: dict, classes, kwargs: dict | None, source: str, path: str = "", extra=(),
               attrs=None) -> Persistent:
    """The persistent objects of one network from its flat state dict (NVlabs' names); `extra` names modules
    without tensors, `attrs` ({path regex: attributes}) adds plain attributes."""
    class_name = next(name for pattern, name in reversed(classes) if re.fullmatch(pattern, path))
    own = {k: v for k, v in flat.items() if "." not in k}
    children = sorted({k.split(".")[0] for k in flat if "." in k} | {e.split(".")[0] for e in extra})
    modules = {}
    for child in children:
        sub = {k[len(child) + 1:]: v for k, v in flat.items() if k.startswith(child + ".")}
        sub_extra = [e[len(child) + 1:] for e in extra if e.startswith(child + ".")]
        modules[child] = build_tree(sub, classes, None, source, f"{path}.{child}".lstrip("."), sub_extra, attrs)
    params = {k: torch.nn.Parameter(v, requires_grad=False) for k, v in own.items() if k not in _BUFFERS}
    buffers = {k: v for k, v in own.items() if k in _BUFFERS}
    plain = _attrs(class_name, own)
    for pattern, more in (attrs or {}).items():
        if re.fullmatch(pattern, path):
            plain.update(more)
    if kwargs is not None:
        plain.update(_init_args=(), _init_kwargs=kwargs)
    return Persistent(class_name, module_state(params, buffers, modules, **plain), source)


def g_kwargs(res, w_dim, n_mapping, channel_base, channel_max, **synthesis) -> dict:
    """A Generator's constructor arguments as NVlabs' training loop passes them (published: fp16, clamp 256)."""
    return {"z_dim": w_dim, "c_dim": 0, "w_dim": w_dim, "img_resolution": res, "img_channels": 3,
            "mapping_kwargs": EasyDict(num_layers=n_mapping),
            "synthesis_kwargs": EasyDict(channel_base=channel_base, channel_max=channel_max, num_fp16_res=4,
                                         conv_clamp=256, **synthesis)}


def d_kwargs(res, channel_base, channel_max, **extra) -> dict:
    return {"c_dim": 0, "img_resolution": res, "img_channels": 3, "architecture": "resnet",
            "channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": 4, "conv_clamp": 256,
            "block_kwargs": EasyDict(), "mapping_kwargs": EasyDict(),
            "epilogue_kwargs": EasyDict(mbstd_group_size=4), **extra}


def write_nvlabs_pickle(path, g_state, d_state, gk, dk, source="", ada_p=0.25, g_classes=(), g_attrs=None) -> None:
    """A snapshot as NVlabs' training writes it: dict(G, D, G_ema, augment_pipe, training_set_kwargs);
    `g_classes` adds (path regex, class name) rules to the generator's, `g_attrs` plain attributes."""
    g_classes = _G_CLASSES + list(g_classes)
    with nvlabs_globals():
        data = dict(G=build_tree(g_state, g_classes, gk, source, attrs=g_attrs),
                    D=build_tree(d_state, _D_CLASSES, dk, source, extra=["b4.mbstd"]),
                    G_ema=build_tree(g_state, g_classes, gk, source, attrs=g_attrs),
                    augment_pipe=Persistent("AugmentPipe", module_state(buffers={"p": torch.tensor(ada_p)}), source),
                    training_set_kwargs=EasyDict(path="~/datasets/metfaces.zip", resolution=gk["img_resolution"]))
        with open(path, "wb") as f:
            pickle.dump(data, f)


# ---------------------------------------------------------------- random NVlabs-named networks


def widths(res, channel_base, channel_max):
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, int(math.log2(res)) + 1)}


def random_g_state(gen, res, w_dim, n_mapping, channel_base, channel_max) -> dict:
    """A Generator's tensors with NVlabs' names and shapes, random (biases, noise strengths and w_avg too)."""
    ch = widths(res, channel_base, channel_max)
    r = lambda *shape, scale=1.0, mean=0.0: torch.randn(*shape, generator=gen) * scale + mean  # noqa: E731
    state = {}
    for i in range(n_mapping):
        state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"] = r(w_dim, w_dim, scale=100), r(w_dim, scale=20)
    state["mapping.w_avg"] = r(w_dim)

    def layer(p, cin, cout, size, k=3):
        state.update({f"{p}.weight": r(cout, cin, k, k), f"{p}.bias": r(cout, scale=0.3),
                      f"{p}.affine.weight": r(cin, w_dim), f"{p}.affine.bias": r(cin, scale=0.3, mean=1)})
        if k == 3:
            state.update({f"{p}.noise_strength": r((), scale=0.3), f"{p}.noise_const": r(size, size),
                          f"{p}.resample_filter": BLUR.clone()})

    state["synthesis.b4.const"] = r(ch[4], 4, 4)
    for res_ in ch:
        block = f"synthesis.b{res_}"
        state[f"{block}.resample_filter"] = BLUR.clone()
        if res_ > 4:
            layer(f"{block}.conv0", ch[res_ // 2], ch[res_], res_)
        layer(f"{block}.conv1", ch[res_], ch[res_], res_)
        layer(f"{block}.torgb", ch[res_], 3, res_, k=1)
    return state


def random_d_state(gen, res, channel_base, channel_max) -> dict:
    ch = widths(res, channel_base, channel_max)
    r = lambda *shape, scale=1.0: torch.randn(*shape, generator=gen) * scale  # noqa: E731
    state = {f"b{res}.fromrgb.weight": r(ch[res], 3, 1, 1), f"b{res}.fromrgb.bias": r(ch[res], scale=0.3),
             f"b{res}.fromrgb.resample_filter": BLUR.clone()}
    for res_ in [x for x in ch if x > 4][::-1]:
        b = f"b{res_}"
        c_in, c_out = ch[res_], ch[res_ // 2]
        state.update({f"{b}.resample_filter": BLUR.clone(),
                      f"{b}.conv0.weight": r(c_in, c_in, 3, 3), f"{b}.conv0.bias": r(c_in, scale=0.3),
                      f"{b}.conv1.weight": r(c_out, c_in, 3, 3), f"{b}.conv1.bias": r(c_out, scale=0.3),
                      f"{b}.skip.weight": r(c_out, c_in, 1, 1)})
        for conv in ("conv0", "conv1", "skip"):
            state[f"{b}.{conv}.resample_filter"] = BLUR.clone()
    c = ch[4]
    state.update({"b4.conv.weight": r(c, c + 1, 3, 3), "b4.conv.bias": r(c, scale=0.3),
                  "b4.conv.resample_filter": BLUR.clone(), "b4.fc.weight": r(c, c * 16), "b4.fc.bias": r(c, scale=0.3),
                  "b4.out.weight": r(1, c), "b4.out.bias": r(1, scale=0.3)})
    return state


# ---------------------------------------------------------------- our networks -> NVlabs' names (round trip)


def nvlabs_g_from_ours(ours: dict, n_mapping: int) -> dict:
    """Our stylegan2 generator's state dict under NVlabs' names (the inverse of the reader, from the layout)."""
    state = {"mapping.w_avg": ours["w_avg"], "synthesis.b4.const": ours["input.input"][0]}
    for i in range(n_mapping):  # our mapping runs at NVlabs' lr multiplier, 0.01
        state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"] = (ours[f"style.{i + 1}.weight"],
                                                                        ours[f"style.{i + 1}.bias"])
    n_blocks = 1 + max(int(m.group(1)) for k in ours if (m := re.match(r"to_rgbs\.(\d+)\.", k)))
    layers = [("conv1", "synthesis.b4.conv1", 0)] + [
        (f"convs.{2 * b + j}", f"synthesis.b{2 ** (b + 3)}.conv{j}", 2 * b + j + 1)
        for b in range(n_blocks) for j in (0, 1)]
    for mine, theirs, noise in layers:
        state.update({f"{theirs}.weight": ours[f"{mine}.conv.weight"][0],
                      f"{theirs}.bias": ours[f"{mine}.activate.bias"],
                      f"{theirs}.affine.weight": ours[f"{mine}.conv.modulation.weight"],
                      f"{theirs}.affine.bias": ours[f"{mine}.conv.modulation.bias"],
                      f"{theirs}.noise_strength": ours[f"{mine}.noise.weight"][0],
                      f"{theirs}.noise_const": ours[f"noises.noise_{noise}"][0, 0],
                      f"{theirs}.resample_filter": BLUR.clone()})
    for mine, res in [("to_rgb1", 4)] + [(f"to_rgbs.{b}", 2 ** (b + 3)) for b in range(n_blocks)]:
        theirs = f"synthesis.b{res}.torgb"
        state.update({f"{theirs}.weight": ours[f"{mine}.conv.weight"][0],
                      f"{theirs}.bias": ours[f"{mine}.bias"].flatten(),
                      f"{theirs}.affine.weight": ours[f"{mine}.conv.modulation.weight"],
                      f"{theirs}.affine.bias": ours[f"{mine}.conv.modulation.bias"],
                      f"synthesis.b{res}.resample_filter": BLUR.clone()})
    return state


def nvlabs_d_from_ours(ours: dict, size: int) -> dict:
    state = {f"b{size}.fromrgb.weight": ours["convs.0.0.weight"], f"b{size}.fromrgb.bias": ours["convs.0.1.bias"]}
    for j in range(1, int(math.log2(size)) - 1):
        b = f"b{size >> (j - 1)}"
        c = f"convs.{j}"
        state.update({f"{b}.conv0.weight": ours[f"{c}.conv1.0.weight"], f"{b}.conv0.bias": ours[f"{c}.conv1.1.bias"],
                      f"{b}.conv1.weight": ours[f"{c}.conv2.1.weight"], f"{b}.conv1.bias": ours[f"{c}.conv2.2.bias"],
                      f"{b}.skip.weight": ours[f"{c}.skip.1.weight"]})
    state.update({"b4.conv.weight": ours["final_conv.0.weight"], "b4.conv.bias": ours["final_conv.1.bias"],
                  "b4.fc.weight": ours["final_linear.0.weight"], "b4.fc.bias": ours["final_linear.0.bias"],
                  "b4.out.weight": ours["final_linear.1.weight"], "b4.out.bias": ours["final_linear.1.bias"]})
    return state


# ---------------------------------------------------------------- TensorFlow StyleGAN2's (G, D, Gs)


def _tf(t: torch.Tensor, flip=False) -> np.ndarray:
    """NVlabs' (out, in, kh, kw) / (out, in) back to TF's (kh, kw, in, out) / (in, out)."""
    a = t.numpy()
    if a.ndim == 4:
        a = a.transpose(2, 3, 1, 0)
        return np.ascontiguousarray(a[::-1, ::-1] if flip else a)
    return np.ascontiguousarray(a.T) if a.ndim == 2 else a.copy()


def tf_g_variables(state: dict, res: int, n_mapping: int):
    """(G_main's own variables, mapping's, synthesis') as TF StyleGAN2 names them."""
    own = [("lod", np.float32(0)), ("dlatent_avg", state["mapping.w_avg"].numpy())]
    mapping = [(f"Dense{i}/{p}", _tf(state[f"mapping.fc{i}.{p}"]))
               for i in range(n_mapping) for p in ("weight", "bias")]
    synthesis = [(f"noise{i}", state[name].numpy()[None, None]) for i, name in enumerate(
        ["synthesis.b4.conv1.noise_const"] + [f"synthesis.b{2 ** k}.conv{j}.noise_const"
                                              for k in range(3, int(math.log2(res)) + 1) for j in (0, 1)])]
    synthesis.append(("4x4/Const/const", state["synthesis.b4.const"].numpy()[None]))

    def layer(theirs, scope, flip=False, noise=True):
        out = [(f"{scope}/weight", _tf(state[f"{theirs}.weight"], flip)),
               (f"{scope}/bias", state[f"{theirs}.bias"].numpy()),
               (f"{scope}/mod_weight", _tf(state[f"{theirs}.affine.weight"])),
               (f"{scope}/mod_bias", state[f"{theirs}.affine.bias"].numpy() - 1)]
        return out + ([(f"{scope}/noise_strength", state[f"{theirs}.noise_strength"].numpy())] if noise else [])

    synthesis += layer("synthesis.b4.conv1", "4x4/Conv") + layer("synthesis.b4.torgb", "4x4/ToRGB", noise=False)
    for k in range(3, int(math.log2(res)) + 1):
        r = 2**k
        synthesis += layer(f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", flip=True)
        synthesis += layer(f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1")
        synthesis += layer(f"synthesis.b{r}.torgb", f"{r}x{r}/ToRGB", noise=False)
    return own, mapping, synthesis


def tf_d_variables(state: dict, res: int):
    out = [(f"{res}x{res}/FromRGB/{p}", _tf(state[f"b{res}.fromrgb.{p}"])) for p in ("weight", "bias")]
    for k in range(int(math.log2(res)), 2, -1):
        r = 2**k
        out += [(f"{r}x{r}/Conv0/{p}", _tf(state[f"b{r}.conv0.{p}"])) for p in ("weight", "bias")]
        out += [(f"{r}x{r}/Conv1_down/{p}", _tf(state[f"b{r}.conv1.{p}"])) for p in ("weight", "bias")]
        out.append((f"{r}x{r}/Skip/weight", _tf(state[f"b{r}.skip.weight"])))
    for theirs, scope in (("b4.conv", "4x4/Conv"), ("b4.fc", "4x4/Dense0"), ("b4.out", "Output")):
        out += [(f"{scope}/{p}", _tf(state[f"{theirs}.{p}"])) for p in ("weight", "bias")]
    return out


def _network(name, variables, static_kwargs, components=(), func="training.networks_stylegan2.G_main"):
    return Network({"version": 4, "name": name, "static_kwargs": dict(static_kwargs),
                    "components": dict(components), "build_module_src": "raise RuntimeError('never run')\n",
                    "build_func_name": func.rsplit(".", 1)[-1], "variables": list(variables)})


def write_tf_pickle(path, g_state, d_state, res, n_mapping, fmap_base, fmap_max, g_extra=None, d_extra=None):
    """(G, D, Gs) as TF StyleGAN2's training pickles them (protocol 4), from NVlabs-named states."""
    kw = {"num_channels": 3, "resolution": res, "label_size": 0, "fmap_base": fmap_base, "fmap_max": fmap_max,
          "mapping_layers": n_mapping}
    own, mapping, synthesis = tf_g_variables(g_state, res, n_mapping)
    with nvlabs_globals():
        def generator(name):
            parts = {"mapping": _network("G_mapping", mapping, kw), "synthesis": _network("G_synthesis", synthesis, kw)}
            return _network(name, own, {**kw, **(g_extra or {})}, parts)

        d = _network("D", tf_d_variables(d_state, res), {k: v for k, v in {**kw, **(d_extra or {})}.items()
                                                         if k != "mapping_layers"})
        with open(path, "wb") as f:
            pickle.dump((generator("G"), d, generator("Gs")), f, protocol=4)
