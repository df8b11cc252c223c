"""Loading rosinality/MAGnet checkpoints: key layout, outputs against an independent reference, errors."""

import json
from pathlib import Path

import naive_reference as ref
import pytest
import torch
from rosinality_format import discriminator_state, generator_state, save_rosinality

from magnet import build_discriminator, build_generator, load_discriminator, load_generator
from magnet.nn import style_mix

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
    with pytest.raises(ValueError, match=r"holds a generator swagan 64px.*asked for arch=stylegan2, size=256"):
        load_generator(path, expected={"arch": "stylegan2", "size": 256})
    with pytest.raises(ValueError, match="channel_multiplier=2"):
        load_discriminator(path, expected={"channel_multiplier": 2})


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_unsafe_pickles_and_bad_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
    evil = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": Payload()}, evil)
    with pytest.raises(ValueError, match="unsafe"):
        load_generator(evil)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a readable"):
        load_generator(garbage)
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, wrong)
    with pytest.raises(ValueError, match="no 'g_ema' network"):
        load_generator(wrong)
    d_only = tmp_path / "d_as_g.pt"
    torch.save({"g_ema": build_discriminator("swagan", 32, channel_multiplier=1, channel_max=16).state_dict()}, d_only)
    with pytest.raises(ValueError, match="not a StyleGAN2/SWAGAN generator"):
        load_generator(d_only)
