"""NVlabs' StyleGAN2-ADA and TensorFlow StyleGAN2 pickles: read without their code, as NVlabs computes them."""

import builtins
import os
import pickle
import re
import subprocess
import sys

import hydra
import naive_nvlabs as naive
import numpy as np
import nvlabs_format as fmt
import pytest
import torch
from train_config import compose_train

from magnet import build_discriminator, build_generator, load_discriminator, load_generator
from magnet.errors import UserError
from magnet.nn import NetworkConfig
from magnet.nn.checkpoint import check_resume_checkpoint, read_checkpoint
from magnet.training.module import GAN
from train import train

RES, W_DIM, BASE, CMAX = 32, 16, 512, 16  # NVlabs' widths min(512 // res, 16): 16 everywhere, like TINY's
OURS = dict(style_dim=W_DIM, channel_multiplier=1, channel_max=CMAX)


def nvlabs_states(seed=0, n_mapping=2):
    gen = torch.Generator().manual_seed(seed)
    return (fmt.random_g_state(gen, RES, W_DIM, n_mapping, BASE, CMAX), fmt.random_d_state(gen, RES, BASE, CMAX))


def write(path, g_state, d_state, n_mapping=2, gk=None, dk=None, **kw):
    gk = gk or fmt.g_kwargs(RES, W_DIM, n_mapping, BASE, CMAX)
    fmt.write_nvlabs_pickle(path, g_state, d_state, gk, dk or fmt.d_kwargs(RES, BASE, CMAX), **kw)
    return path


def one_line_error(load, path, *patterns):
    with pytest.raises(UserError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return message


def close(actual, expected, tol=1e-4) -> bool:
    """Max abs difference within `tol`, relative to the values where they pass 1 (float32 round-off)."""
    return bool((actual - expected).abs().max() <= tol * max(1.0, float(expected.abs().max())))


def nvlabs_modules():
    return [m for m in sys.modules if m.split(".")[0] in ("torch_utils", "dnnlib")]


# ---------------------------------------------------------------- reading, and computing as NVlabs does


def test_a_snapshot_loads_without_nvlabs_code_and_never_runs_the_source_it_carries(tmp_path):
    marker = tmp_path / "source_was_executed"
    path = write(tmp_path / "network-snapshot-000000.pkl", *nvlabs_states(),
                 source=fmt.source_that_must_not_run(marker))
    assert not nvlabs_modules()
    G, D = load_generator(path), load_discriminator(path)
    assert not marker.exists() and not nvlabs_modules()
    assert G.config == NetworkConfig("stylegan2", RES, n_mlp=2, conv_clamp=256, **OURS)
    assert D.config.conv_clamp == 256
    ckpt = read_checkpoint(path)
    assert ckpt["ada_aug_p"] == pytest.approx(0.25) and {"g", "d", "g_ema"} <= set(ckpt)


@pytest.mark.parametrize("n_mapping", [2, 8])
def test_generator_and_discriminator_agree_with_nvlabs_layer_formulas(tmp_path, n_mapping):
    g_state, d_state = nvlabs_states(n_mapping, n_mapping)
    path = write(tmp_path / "net.pkl", g_state, d_state, n_mapping)
    G, D = load_generator(path), load_discriminator(path).eval()
    z = torch.randn(6, W_DIM, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            image = G(z, truncation_psi=psi, noise_mode="const")
            expected = naive.generate(g_state, z, psi, clamp=256)
            assert close(image, expected) and expected.abs().max() > 1
        # batch 6: NVlabs' minibatch std needs groups of min(4, N) that divide it: 4 images, then 2 more
        for batch in (image[:4], image[4:]):
            assert close(D(batch), naive.discriminate(d_state, batch, clamp=256))


def test_conv_clamp_clips_as_nvlabs_does(tmp_path):
    g_state, d_state = nvlabs_states(2)
    for name in ("synthesis.b8.conv1.bias", "synthesis.b16.torgb.bias"):
        g_state[name] = g_state[name] + 400  # activations past the clamp of 256
    for name in ("b32.conv0.bias", "b16.conv1.bias"):
        d_state[name] = d_state[name] + 400
    path = write(tmp_path / "net.pkl", g_state, d_state)
    G, D = load_generator(path), load_discriminator(path).eval()
    unclamped = build_generator("stylegan2", RES, n_mlp=2, **OURS).eval()
    unclamped.load_state_dict(G.state_dict())
    z = torch.randn(4, W_DIM, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        image = G(z, noise_mode="const")
        assert close(image, naive.generate(g_state, z, clamp=256))
        assert close(unclamped(z, noise_mode="const"), naive.generate(g_state, z))
        assert (image - unclamped(z, noise_mode="const")).abs().max() > 1  # the clamp did something
        assert close(D(image), naive.discriminate(d_state, image, clamp=256))
        assert (D(image) - naive.discriminate(d_state, image)).abs().max() > 1e-2
    # with autograd (not in place, NCHW as in training): the same clamp, to round-off (mkldnn may sum in another order)
    assert close(G(z, noise_mode="const"), image, tol=1e-6)


def _randomised(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith(("bias", "noise.weight", "w_avg")):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.3 + ("modulation" in name))
    return module.eval()


def test_our_networks_round_trip_through_an_nvlabs_pickle(tmp_path):
    G = _randomised(build_generator("stylegan2", RES, n_mlp=2, conv_clamp=256, **OURS), 3)
    D = _randomised(build_discriminator("stylegan2", RES, conv_clamp=256, channel_multiplier=1, channel_max=CMAX), 4)
    path = write(tmp_path / "ours.pkl", fmt.nvlabs_g_from_ours(G.state_dict(), 2),
                 fmt.nvlabs_d_from_ours(D.state_dict(), RES))
    G2, D2 = load_generator(path), load_discriminator(path).eval()
    assert G2.config == G.config and D2.config == D.config
    z = torch.randn(4, W_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            image = G(z, truncation_psi=psi, noise_mode="const")
            assert (G2(z, truncation_psi=psi, noise_mode="const") - image).abs().max() < 1e-6
        assert (D2(image) - D(image)).abs().max() < 1e-6


def test_a_tensorflow_stylegan2_pickle_reads_as_legacy_py_converts_it(tmp_path):
    g_state, d_state = nvlabs_states(6)
    path = tmp_path / "stylegan2-tiny-config-f.pkl"
    fmt.write_tf_pickle(path, g_state, d_state, RES, 2, BASE // 2, CMAX,
                        g_extra={"latent_size": W_DIM, "dlatent_size": W_DIM, "truncation_psi": 0.5})
    assert not nvlabs_modules()
    G, D = load_generator(path), load_discriminator(path).eval()
    assert not nvlabs_modules()
    assert G.config == NetworkConfig("stylegan2", RES, n_mlp=2, **OURS)  # TF's networks have no clamp
    assert read_checkpoint(path)["converted_from"].startswith("a TensorFlow StyleGAN2 network pickle")
    z = torch.randn(4, W_DIM, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            image = G(z, truncation_psi=psi, noise_mode="const")
            assert close(image, naive.generate(g_state, z, psi))
        assert close(D(image), naive.discriminate(d_state, image))


def test_a_mapping_trained_at_another_lr_multiplier_is_rescaled(tmp_path):
    g_state, d_state = nvlabs_states(8)
    gk = fmt.g_kwargs(RES, W_DIM, 2, BASE, CMAX)
    gk["mapping_kwargs"]["lr_multiplier"] = 0.1
    G = load_generator(write(tmp_path / "lr.pkl", g_state, d_state, gk=gk))
    z = torch.randn(3, W_DIM, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert close(G(z, noise_mode="const"), naive.generate(g_state, z, lr=0.1))


# ---------------------------------------------------------------- what our networks cannot compute


def _case(name, tmp_path):
    g_state, d_state = nvlabs_states(10)
    gk, dk, kw = fmt.g_kwargs(RES, W_DIM, 2, BASE, CMAX), fmt.d_kwargs(RES, BASE, CMAX), {}
    if name == "conditional":
        gk["c_dim"] = 10
        g_state |= {"mapping.embed.weight": torch.randn(W_DIM, 10), "mapping.embed.bias": torch.zeros(W_DIM)}
    elif name == "stylegan3 input":
        g_state["synthesis.input.weight"] = torch.randn(W_DIM, 4)
        kw["g_classes"] = [(r"synthesis\.input", "SynthesisInput")]
    elif name == "stylegan3 layer":
        kw["g_attrs"] = {r"synthesis\.b8\.conv0": {"use_fp16": False, "magnitude_ema_beta": 0.999}}
    elif name == "skip discriminator":
        dk["architecture"] = "skip"
    elif name == "mbstd group":
        dk["epilogue_kwargs"]["mbstd_group_size"] = 8
    elif name == "mbstd whole batch":
        dk["epilogue_kwargs"]["mbstd_group_size"] = None
    elif name == "z_dim":
        gk["z_dim"] = 8
    elif name == "16 px":
        g_state = fmt.random_g_state(torch.Generator().manual_seed(0), 16, W_DIM, 2, BASE, CMAX)
        gk["img_resolution"] = 16
    elif name == "filter":
        g_state["synthesis.b8.conv0.resample_filter"] = torch.ones(4, 4) / 16
    elif name == "resnet generator":
        g_state["synthesis.b8.skip.weight"] = torch.randn(CMAX, CMAX, 1, 1)
    return write(tmp_path / f"{name.replace(' ', '_')}.pkl", g_state, d_state, gk=gk, dk=dk, **kw)


@pytest.mark.parametrize("name,load,expected", [
    ("conditional", load_generator, r"a conditional G_ema \(c_dim=10: it makes images of given class labels\)"),
    ("stylegan3 input", load_generator, r"a StyleGAN3 generator"),
    ("stylegan3 layer", load_generator, r"a StyleGAN3 generator"),
    ("skip discriminator", load_discriminator, r"a D with architecture='skip' \(magnet's: 'resnet'\)"),
    ("mbstd group", load_discriminator, r"epilogue_kwargs\.mbstd_group_size=8 \(magnet's: 4\)"),
    ("mbstd whole batch", load_discriminator, r"epilogue_kwargs\.mbstd_group_size=None \(magnet's: 4\)"),
    ("z_dim", load_generator, r"z_dim 8 != w_dim 16"),
    ("16 px", load_generator, r"a G_ema of 16 px \(magnet's networks make 32 to 1024 px\)"),
    ("filter", load_generator, r"resampling filter synthesis\.b8\.conv0\.resample_filter is not \[1, 3, 3, 1\]"),
    ("resnet generator", load_generator, r"tensors of another architecture \(synthesis\.b8\.skip\.weight\)"),
])
def test_models_our_networks_cannot_compute_are_refused_saying_what_they_are(tmp_path, name, load, expected):
    one_line_error(load, _case(name, tmp_path), expected, "not supported")


def test_a_discriminator_we_cannot_compute_leaves_the_generator_usable(tmp_path):
    """auto-config models trained with few images per GPU have minibatch-std groups of 2: their G still loads."""
    path = _case("mbstd group", tmp_path)
    assert load_generator(path).config.size == RES
    one_line_error(load_discriminator, path, r"holds no 'd' network: it is an NVlabs StyleGAN2-ADA network pickle "
                                             r"\(G, G_ema; its D is not supported: a D with epilogue_kwargs")


def test_tensorflow_pickles_of_other_configs_are_refused(tmp_path):
    g_state, d_state = nvlabs_states(11)
    path = tmp_path / "stylegan2-config-e.pkl"
    fmt.write_tf_pickle(path, g_state, d_state, RES, 2, BASE // 2, CMAX, g_extra={"fmap_decay": 0.5})
    one_line_error(load_generator, path, r"a TensorFlow G built with fmap_decay=0\.5", "not supported")
    fmt.write_tf_pickle(path, g_state, d_state, RES, 2, BASE // 2, CMAX, d_extra={"label_size": 5})
    one_line_error(load_discriminator, path, r"a conditional D \(c_dim=5", "not supported")


# ---------------------------------------------------------------- bad input: code, broken files, other kinds


class Unknown:
    pass


class Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    return {"os.system": (Payload(os.system, f"touch {marker}"), r"(os|posix)\.system"),
            "builtins.eval": (Payload(builtins.eval, f"open({str(marker)!r}, 'w')"), r"builtins\.eval"),
            "subprocess.Popen": (Payload(subprocess.Popen, ["touch", str(marker)]), r"subprocess\.Popen"),
            "unknown class": (Unknown(), r"test_nvlabs\.Unknown")}


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen", "unknown class"])
def test_a_pickle_with_code_is_refused_before_anything_is_built(tmp_path, monkeypatch, name):
    marker = tmp_path / "payload_ran"
    payload, global_name = _payloads(marker)[name]
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:  # a tensor first: refusing when the payload comes would be too late
        pickle.dump({"G_ema": torch.zeros(3), "D": payload}, f, protocol=4)
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))  # the storages' only reader
    one_line_error(load_generator, path, rf"asks for {global_name}, which a network pickle never needs")
    assert not marker.exists() and not loads


def test_a_global_whose_name_hides_in_the_memo_is_still_refused(tmp_path):
    """STACK_GLOBAL's strings fetched back from the memo, not written where the global is."""
    marker = tmp_path / "payload_ran"
    ops = (b"\x80\x04" + b"\x8c\x05posix\x94" + b"0" + b"\x8c\x06system\x94" + b"0"  # push, memoize, pop
           + b"h\x00h\x01\x93" + b"\x8c" + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode()
           + b"\x85R.")  # memo 0, memo 1, STACK_GLOBAL, the command, TUPLE1, REDUCE, STOP
    (tmp_path / "hidden.pkl").write_bytes(ops)
    one_line_error(load_generator, tmp_path / "hidden.pkl", r"asks for posix\.system")
    assert not marker.exists()


def test_a_persistent_object_of_another_class_is_refused(tmp_path):
    g_state, d_state = nvlabs_states(12)
    path = write(tmp_path / "other.pkl", g_state, d_state, g_classes=[(r"mapping", "EvilNetwork")])
    one_line_error(load_generator, path, r"an object of class EvilNetwork, which is not one of StyleGAN2-ADA's")


def test_broken_files_and_other_pickles_are_named_in_one_line(tmp_path):
    g_state, d_state = nvlabs_states(13)
    good = write(tmp_path / "good.pkl", g_state, d_state)
    (tmp_path / "cut.pkl").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    one_line_error(load_generator, tmp_path / "cut.pkl", r"is cut short or corrupt", "download it again")
    (tmp_path / "noise.pkl").write_bytes(b"\x80\x04" + b"\xff" * 64)  # no such opcode
    one_line_error(load_generator, tmp_path / "noise.pkl", r"is (cut short or )?corrupt")
    (tmp_path / "objects.pkl").write_bytes(pickle.dumps({"G": np.array([1, "os.system"], dtype=object)}))
    one_line_error(load_generator, tmp_path / "objects.pkl",
                   r"cannot be read as a network pickle \(UnpicklingError: numpy dtype 'O\d?', not a number type\)")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    one_line_error(load_generator, tmp_path / "list.pkl", r"holds a list, not a StyleGAN2 network pickle")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"weights": torch.zeros(2)}))
    one_line_error(load_generator, tmp_path / "dict.pkl", r"holds a dict with keys weights, not a StyleGAN2")
    (tmp_path / "tensor_g.pkl").write_bytes(pickle.dumps({"G_ema": torch.zeros(2)}))
    one_line_error(load_generator, tmp_path / "tensor_g.pkl", r"G_ema is a Tensor, not an NVlabs Generator")
    del g_state["synthesis.b16.conv0.weight"]
    one_line_error(load_generator, write(tmp_path / "lacks.pkl", g_state, d_state),
                   r"G_ema lacks the tensor synthesis\.b16\.conv0\.weight")


def test_torch_legacy_format_checkpoints_still_go_to_torch(tmp_path):
    """Pre-zip torch.save files also start with a pickle header: the dispatch must not take them for pickles."""
    G = build_generator("stylegan2", RES, n_mlp=2, **OURS)
    torch.save({"g_ema": G.state_dict()}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert load_generator(tmp_path / "legacy.pt").config == G.config


def test_a_model_of_another_size_or_architecture_than_asked_is_refused(tmp_path):
    path = write(tmp_path / "metfaces.pkl", *nvlabs_states(14))
    one_line_error(lambda p: check_resume_checkpoint(p, {}), path,
                   r"is an NVlabs StyleGAN2-ADA network pickle \(G, D, G_ema\), not a training checkpoint .*"
                   r"to fine-tune from it use model.init_from=")
    one_line_error(lambda p: load_generator(p, expected={"size": 64}), path,
                   r"holds a generator stylegan2 32px.*but asked for stylegan2 64px")
    one_line_error(lambda p: load_discriminator(p, expected={"arch": "swagan"}), path,
                   r"holds a discriminator stylegan2 32px.*asked for swagan 32px")
    network = dict(arch="stylegan2", size=64, n_mlp=2, **OURS)
    one_line_error(lambda p: GAN(network, init_from=str(p)), path,
                   r"holds a generator stylegan2 32px.*but model.network asks for stylegan2 64px.*"
                   r"set model.network.size=32 to match it$")


# ---------------------------------------------------------------- fine-tuning


def test_fine_tune_from_an_nvlabs_pickle_end_to_end(tmp_path, tiny_paintings):
    g_state, d_state = nvlabs_states(15)
    path = write(tmp_path / "metfaces.pkl", g_state, d_state)
    cfg = compose_train(tmp_path / "run", tiny_paintings, "model=stylegan2", f"model.init_from={path}",
                        "model.total_kimg=0.008", "~callbacks.samples")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    assert model.config.conv_clamp == 256 and model._init_ada_p == pytest.approx(0.25)
    assert torch.equal(model.G.convs[0].conv.weight[0], g_state["synthesis.b8.conv0.weight"])
    assert torch.equal(model.D.final_linear[1].weight, d_state["b4.out.weight"])
    assert torch.equal(model.g_ema.w_avg, g_state["mapping.w_avg"])
    with pytest.raises(UserError, match=r"computes with conv_clamp=None, this run's networks with conv_clamp=256"):
        model.on_load_checkpoint({"network": {"conv_clamp": None}})
    train(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["network"]["conv_clamp"] == 256
    G = load_generator(last)
    assert G.config.conv_clamp == 256 and load_discriminator(last).config.conv_clamp == 256
    assert not torch.equal(G.convs[0].conv.weight[0], g_state["synthesis.b8.conv0.weight"])  # it trained
