"""Loading rosinality/MAGnet checkpoints: key layout, outputs against an independent reference, errors."""

import itertools
import json
import math
import re
import zipfile
from pathlib import Path

import naive_reference as ref
import numpy as np
import pytest
import torch
from rosinality_format import save_rosinality

from magnet import build_discriminator, build_generator, load_discriminator, load_generator
from magnet.errors import UserError
from magnet.models.rosinality import discriminator_state, generator_state
from magnet.nn import ARCHS, Discriminator, Generator, NetworkConfig, style_mix
from magnet.nn.checkpoint import (
    check_architecture,
    checkpoint_config,
    discriminator_from,
    generator_from,
    infer_discriminator_config,
    infer_generator_config,
    network_state,
)

# Key layouts of rosinality's own checkpoints, transcribed from ../shared/reference/rosinality_checkpoint_layout.txt
# (see its "_source"): the independent reference for our state dicts, which are written by our own networks.
LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "rosinality_layout.json").read_text())
TINY = dict(style_dim=24, n_mlp=3, channel_multiplier=1, channel_max=16)


@pytest.mark.parametrize("name,size", [("swagan256_random", 256), ("swagan64_random", 64)])
def test_state_dict_layout_is_rosinalitys(name, size):
    G = build_generator("swagan", size)
    D = build_discriminator("swagan", size)
    for net, state in (("g_ema", generator_state(G.state_dict(), True)),
                       ("d", discriminator_state(D.state_dict(), True))):
        ours = {k: list(v.shape) for k, v in state.items()}
        assert ours == LAYOUT[name][net]


def test_stylegan2_layout_is_rosinalitys():
    """model.py's Generator(256): swagan's keys without the Haar filters, its 18 own keys, 3-channel ToRGBs."""
    differences = LAYOUT["stylegan2_256_vs_swagan256"]
    swagan = LAYOUT["swagan256_random"]["g_ema"]
    ours = {k: list(v.shape) for k, v in generator_state(build_generator("stylegan2", 256).state_dict(), False).items()}
    shared = {k for k in swagan if ".iwt." not in k and ".dwt." not in k and not k.startswith("iwt.")}
    assert set(ours) == shared | set(differences["g_ema_only"])
    for key in shared:
        assert ours[key] == differences["g_ema_shapes"].get(key, swagan[key]), key


@pytest.mark.parametrize("arch", ["swagan", "stylegan2"])
@pytest.mark.parametrize("size", [32, 64])
def test_outputs_match_the_reference_implementation(tmp_path, arch, size):
    path = tmp_path / "rosinality.pt"
    g_state, d_state = save_rosinality(path, arch, size, **TINY)
    G, D = load_generator(path), load_discriminator(path)
    wavelet = arch == "swagan"
    torch.manual_seed(1)
    z, z2 = torch.randn(4, 24), torch.randn(4, 24)
    w, w2 = ref.mapping(g_state, z), ref.mapping(g_state, z2)

    expected, latent = ref.generate(g_state, [w], wavelet)
    torch.testing.assert_close(G.mapping(z), latent, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(G(z, noise_mode="const"), expected, rtol=1e-4, atol=1e-4)

    w_mean = ref.mapping(g_state, torch.randn(256, 24)).mean(0, keepdim=True)
    G.w_avg.copy_(w_mean[0])
    expected, _ = ref.generate(g_state, [w], wavelet, psi=0.7, w_mean=w_mean)
    torch.testing.assert_close(G(z, truncation_psi=0.7, noise_mode="const"), expected, rtol=1e-4, atol=1e-4)

    expected, _ = ref.generate(g_state, [w, w2], wavelet, inject_index=3)
    mixed = style_mix(G.mapping(z), G.mapping(z2), 3)
    torch.testing.assert_close(G.synthesis(mixed, noise_mode="const"), expected, rtol=1e-4, atol=1e-4)

    img = torch.randn(4, 3, size, size, requires_grad=True)
    ref_img = img.detach().clone().requires_grad_(True)
    score, ref_score = D(img), ref.discriminate(d_state, ref_img)
    torch.testing.assert_close(score, ref_score, rtol=1e-4, atol=1e-4)
    (grad,) = torch.autograd.grad(score.sum(), img)
    (ref_grad,) = torch.autograd.grad(ref_score.sum(), ref_img)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_magnet_era_discriminator_with_1x1_from_rgb(tmp_path):
    path = tmp_path / "magnet_era.pt"
    _, d_state = save_rosinality(path, "swagan", 32, from_rgb_kernel=1, **TINY)
    assert d_state["from_rgbs.0.conv.0.weight"].shape[-1] == 1
    D = load_discriminator(path)
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(D(img), ref.discriminate(d_state, img), rtol=1e-4, atol=1e-4)


def test_loaded_generator_is_in_eval_mode_with_an_average_w(tmp_path):
    path = tmp_path / "g.pt"
    save_rosinality(path, "swagan", 32, **TINY)
    G = load_generator(path)
    assert not G.training
    assert G.w_avg.abs().sum() > 0  # rosinality stores none: computed from seeded samples
    assert torch.equal(G.w_avg, load_generator(path).w_avg)


def test_latent_avg_of_converted_checkpoints_is_used(tmp_path):
    path = tmp_path / "converted.pt"
    G = build_generator("stylegan2", 32, **TINY)
    latent_avg = torch.randn(24)
    torch.save({"g_ema": generator_state(G.state_dict(), False), "latent_avg": latent_avg}, path)
    assert torch.equal(load_generator(path).w_avg, latent_avg)


def test_lightning_style_checkpoint_with_prefixed_state_dict(tmp_path):
    G = build_generator("swagan", 32, **TINY)
    path = tmp_path / "ours.ckpt"
    torch.save({"state_dict": {f"g_ema.{k}": v for k, v in G.state_dict().items()}, "epoch": 3}, path)
    z = torch.randn(2, 24)
    torch.testing.assert_close(load_generator(path)(z, noise_mode="const"), G.eval()(z, noise_mode="const"))


def test_mismatch_names_what_the_checkpoint_holds_and_what_was_asked(tmp_path):
    path = tmp_path / "g.pt"
    save_rosinality(path, "swagan", 64, **TINY)
    with pytest.raises(UserError, match=rf"^checkpoint {path} holds a generator swagan 64px.*but asked for "
                                        r"stylegan2 256px.*\(arch swagan, not stylegan2; size 64, not 256\)"):
        load_generator(path, expected={"arch": "stylegan2", "size": 256})
    with pytest.raises(UserError, match=r"\(16 channels at 4 px, not 32; .* and 1 more\); set channel_max=16 to match"):
        load_discriminator(path, expected={"channel_max": 32})


# ---------------------------------------------------------------- architecture: widths, not spellings


def _configs():
    for arch, size, multiplier, channel_max in itertools.product(
            ARCHS, (32, 64, 128), (1, 2), (16, 260, 512)):
        yield NetworkConfig(arch, size, 16, 2, multiplier, channel_max)


def test_configs_with_equal_width_tables_build_identical_networks():
    """The width table is the architecture: equal tables <=> equal tensor shapes, and shapes give the table back."""
    shapes = {}
    with torch.device("meta"):
        for config in _configs():
            for network, build in (("generator", Generator), ("discriminator", Discriminator)):
                state = build(config).state_dict()
                shapes[config, network] = {k: tuple(v.shape) for k, v in state.items()}
                infer = infer_generator_config if network == "generator" else infer_discriminator_config
                found = infer(state)
                found = found[0] if network == "discriminator" else found
                assert found.shape(network) == config.shape(network)
    for (a, net_a), (b, net_b) in itertools.combinations(shapes, 2):
        if net_a == net_b:
            same_shapes = shapes[a, net_a] == shapes[b, net_b]
            assert same_shapes == (a.shape(net_a) == b.shape(net_a)), (a, b, net_a)


def _layout_checkpoint(name):
    """rosinality's own file as shapes only (tensors that take no memory), from the reference layout."""
    return {net: {k: torch.zeros(()).expand(shape) for k, shape in LAYOUT[name][net].items()}
            for net in ("g_ema", "d")}


def test_swagan64_of_rosinality_is_read_from_all_its_networks():
    """rosinality's train.py writes SWAGAN-64 with channel multiplier 2; its generator alone cannot show it."""
    ckpt = _layout_checkpoint("swagan64_random")
    cm1, cm2 = NetworkConfig(size=64, channel_multiplier=1), NetworkConfig(size=64, channel_multiplier=2)
    assert cm1.shape("generator") == cm2.shape("generator")
    assert checkpoint_config(ckpt) == (cm2, ["generator", "discriminator"])
    check_architecture(ckpt, "swagan64.pt", cm2)
    with pytest.raises(UserError, match=r"holds a discriminator swagan 64px channels 512 at 4-16 px, 512 at 64 px, "
                                        r"but model.network asks for .*256 at 64 px "
                                        r"\(512 channels at 64 px, not 256\); "
                                        r"set model.network.channel_multiplier=2 to match it$"):
        check_architecture(ckpt, "swagan64.pt", cm1, setting="model.network")
    assert checkpoint_config(_layout_checkpoint("swagan256_random"))[0] == NetworkConfig(size=256)


def test_swagan64_generator_loads_with_either_multiplier(tmp_path):
    """The same case small: above 256 channels at 64 px the multiplier matters to D only (260 vs 256)."""
    path = tmp_path / "swagan64_cm2.pt"
    save_rosinality(path, "swagan", 64, style_dim=8, n_mlp=1, channel_multiplier=2, channel_max=260)
    states = [load_generator(path, expected={"channel_multiplier": m}).state_dict() for m in (1, 2)]
    assert states[0].keys() == states[1].keys() and all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert load_discriminator(path, expected={"channel_multiplier": 2}).from_rgbs[0].conv[0].weight.shape[0] == 260
    with pytest.raises(UserError, match=r"260 channels at 64 px, not 256.*set channel_multiplier=2 to match it"):
        load_discriminator(path, expected={"channel_multiplier": 1})


# ---------------------------------------------------------------- broken checkpoints: one line, the file, the fix


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def _refusal(load, path, *expected):
    with pytest.raises(UserError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for text in expected:
        assert re.search(text, message), (text, message)
    return info.value


def test_unsafe_pickles_and_bad_files_are_refused_in_one_line(tmp_path):
    err = _refusal(load_generator, tmp_path / "missing.pt", "does not exist")
    assert isinstance(err, FileNotFoundError)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({}, run / "checkpoints" / "last.ckpt")
    err = _refusal(load_generator, run, "is a folder, not a file", r"checkpoints/last\.ckpt")
    assert isinstance(err, FileNotFoundError)
    evil = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": Payload()}, evil)
    err = _refusal(load_generator, evil, r"holds code \(print\).*will not load it")
    assert "weights_only" not in str(err)
    with_numpy = tmp_path / "numpy.pt"
    torch.save({"g_ema": {"w": np.zeros(3)}}, with_numpy)
    _refusal(load_discriminator, with_numpy, r"holds code \(numpy\.\S+\)")
    (tmp_path / "empty.pt").touch()
    _refusal(load_generator, tmp_path / "empty.pt", r"empty file \(0 bytes\)")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not weights")
    _refusal(load_generator, tmp_path / "other.zip", "is a zip archive but not a PyTorch checkpoint")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    _refusal(load_generator, tmp_path / "garbage.pt", "is corrupt, cut short or not a PyTorch checkpoint")
    good = tmp_path / "good.pt"
    save_rosinality(good, "swagan", 32, **TINY)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refusal(load_generator, tmp_path / "cut.pt", "is corrupt, cut short or not a PyTorch checkpoint")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    _refusal(load_generator, tmp_path / "tensor.pt", "holds a Tensor, not a checkpoint dict")
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, wrong)
    _refusal(load_generator, wrong, "holds no 'g_ema' network: it is a dict with keys model")
    d_only = tmp_path / "d_as_g.pt"
    torch.save({"g_ema": build_discriminator("swagan", 32, channel_multiplier=1, channel_max=16).state_dict()}, d_only)
    _refusal(load_generator, d_only, "not a StyleGAN2/SWAGAN generator")
    g_only = tmp_path / "g_as_d.pt"
    torch.save({"d": build_generator("swagan", 32, **TINY).state_dict()}, g_only)
    _refusal(load_discriminator, g_only, "not a StyleGAN2/SWAGAN discriminator")


def _tiny_checkpoint(arch):
    torch.manual_seed(0)
    wavelet = arch == "swagan"
    d = build_discriminator(arch, 32, channel_multiplier=1, channel_max=16)
    return {"g_ema": generator_state(build_generator(arch, 32, **TINY).state_dict(), wavelet),
            "d": discriminator_state(d.state_dict(), wavelet)}


def _faults(ckpt, net):
    """Every tensor of one network, removed, reshaped, and (a few) made NaN or Inf: (checkpoint, tensor, fault)."""
    names = list(network_state(ckpt, net))
    for name in names:
        state = dict(ckpt[net])
        del state[name]
        yield {**ckpt, net: state}, name, "lacks"
        tensor = state_value = ckpt[net][name]
        state_value = torch.zeros(*tensor.shape[:-1], tensor.shape[-1] + 1)
        yield {**ckpt, net: {**ckpt[net], name: state_value}}, name, "of another shape"
    for name, value in ((names[0], math.nan), (names[len(names) // 2], math.inf), (names[-1], -math.inf)):
        broken = ckpt[net][name].clone()
        broken.view(-1)[-1] = value
        yield {**ckpt, net: {**ckpt[net], name: broken}}, name, "NaN/Inf values"
    yield {**ckpt, net: {**ckpt[net], "extra.weight": torch.zeros(2)}}, "extra.weight", "has tensors that"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("net,load", [("g_ema", generator_from), ("d", discriminator_from)])
def test_every_broken_tensor_is_named(arch, net, load):
    """Any one tensor missing, reshaped, non-finite or extra: the error names it, not a neighbour or a size."""
    for ckpt, name, fault in _faults(_tiny_checkpoint(arch), net):
        if name == "w_avg":  # rosinality's generators have none: computed instead
            continue
        with pytest.raises(UserError) as info:
            load(ckpt, net, "tiny.pt")
        message = str(info.value)
        assert message.startswith(f"checkpoint tiny.pt: '{net}' ") and "\n" not in message
        assert fault in message and re.search(rf"[ :]{re.escape(name)}([ ,;:]|$)", message), (name, message)


def test_non_finite_weights_in_a_file_are_refused_with_the_tensor_named(tmp_path):
    ckpt = _tiny_checkpoint("swagan")
    ckpt["g_ema"]["convs.1.conv.weight"][0, 0, 0, 0, 0] = math.nan
    ckpt["d"]["final_linear.0.weight"][0, 0] = math.inf
    torch.save(ckpt, tmp_path / "diverged.pt")
    _refusal(load_generator, tmp_path / "diverged.pt", r"'g_ema' has NaN/Inf values in convs\.1\.conv\.weight",
             "use an earlier checkpoint")
    _refusal(load_discriminator, tmp_path / "diverged.pt", r"'d' has NaN/Inf values in final_linear\.0\.weight")
    torch.save({**_tiny_checkpoint("swagan"), "latent_avg": torch.full((24,), math.nan)}, tmp_path / "avg.pt")
    _refusal(load_generator, tmp_path / "avg.pt", "NaN/Inf values in latent_avg")


@pytest.mark.parametrize("arch", ["swagan", "stylegan2"])
def test_an_early_stop_is_the_lower_blocks_image_of_the_reference(tmp_path, arch):
    """synthesis(stop_at=s): SWAGAN's inverse Haar transform of that block's skip, StyleGAN2's ToRGB sum."""
    g_state, _ = save_rosinality(tmp_path / "g.pt", arch, 64, **TINY)
    G = load_generator(tmp_path / "g.pt")
    torch.manual_seed(2)
    z = torch.randn(3, 24)
    ws = G.mapping(z)
    for blocks, size in enumerate(G.image_sizes):
        expected, _ = ref.generate(g_state, [ref.mapping(g_state, z)], arch == "swagan", blocks=blocks)
        assert expected.shape[-1] == size
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const", stop_at=size), expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(G.synthesis(ws, noise_mode="const", stop_at=64), G.synthesis(ws, noise_mode="const"))
    with pytest.raises(ValueError, match=r"stop_at must be one of \[.*32, 64\] \(px\), got 48"):
        G.synthesis(ws, stop_at=48)
