"""Generator and discriminator: shapes, the W / W+ API, noise modes, truncation, bad configs."""

import pytest
import torch

from magnet import build_discriminator, build_generator
from magnet.nn import NetworkConfig, style_mix

TINY = dict(style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16)


def tiny_generator(arch="swagan", size=32):
    torch.manual_seed(0)
    G = build_generator(arch, size, **TINY)
    with torch.no_grad():  # fresh noise weights are zero; make the noise visible
        for name, p in G.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    return G.eval()


@pytest.mark.parametrize("arch", ["swagan", "stylegan2"])
@pytest.mark.parametrize("size", [32, 64, 128, 256, 512, 1024])
def test_every_size_builds_with_the_expected_latent_count(arch, size):
    G = build_generator(arch, size, style_dim=8, n_mlp=1, channel_multiplier=1, channel_max=8)
    D = build_discriminator(arch, size, channel_multiplier=1, channel_max=8)
    log2 = size.bit_length() - 1
    expected = 2 * log2 - 2 - (2 if arch == "swagan" else 0)  # SWAGAN synthesises at half size
    assert G.n_latent == expected
    if size <= 64:
        img = G(torch.randn(2, 8))
        assert img.shape == (2, 3, size, size)
        assert D(img).shape == (2, 1)


def test_default_shape_is_magnets_published_model():
    config = NetworkConfig()
    assert (config.arch, config.size, config.style_dim, config.n_mlp, config.channel_multiplier) == (
        "swagan", 512, 512, 8, 2)
    assert [config.channels(r) for r in (4, 32, 64, 128, 256, 512)] == [512, 512, 512, 256, 128, 64]


@pytest.mark.parametrize(
    "field,value",
    [("size", 48), ("size", 2048), ("size", 16), ("arch", "stylegan3"), ("channel_multiplier", 0),
     ("style_dim", -1), ("n_mlp", 1.5)],
)
def test_bad_config_values_are_named(field, value):
    with pytest.raises(ValueError, match=f"{field}.*{value}"):
        NetworkConfig(**{field: value})


@pytest.mark.parametrize("arch", ["swagan", "stylegan2"])
def test_mapping_synthesis_and_forward_agree(arch):
    G = tiny_generator(arch)
    z = torch.randn(3, 16)
    ws = G.mapping(z)
    assert ws.shape == (3, G.n_latent, 16)
    assert torch.equal(ws[:, 0], ws[:, -1])
    img = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(img, G(z, noise_mode="const"))
    # W input broadcasts to W+
    assert torch.allclose(G.synthesis(ws[:, 0], noise_mode="const"), img)


@pytest.mark.parametrize("arch", ["swagan", "stylegan2"])
def test_inference_runs_channels_last_with_the_training_path_results(arch):
    G = tiny_generator(arch, size=64)
    ws = G.mapping(torch.randn(3, 16))
    layouts = []
    hook = G.convs[-1].register_forward_hook(
        lambda module, args, out: layouts.append(out.is_contiguous(memory_format=torch.channels_last)))
    training_path = G.synthesis(ws, noise_mode="const")  # grad enabled: NCHW, as the training step runs
    with torch.no_grad():
        inference = G.synthesis(ws, noise_mode="const")
    hook.remove()
    assert layouts == [False, True]
    assert inference.is_contiguous()  # callers may .view() it
    torch.testing.assert_close(inference, training_path.detach(), rtol=0, atol=1e-5)


def test_noise_modes():
    G = tiny_generator()
    z = torch.randn(2, 16)
    const = G(z, noise_mode="const")
    assert torch.equal(const, G(z, noise_mode="const"))
    assert not torch.allclose(G(z, noise_mode="random"), G(z, noise_mode="random"))
    none = G(z, noise_mode="none")
    assert torch.equal(none, G(z, noise_mode="none"))
    assert not torch.allclose(none, const)
    with pytest.raises(ValueError, match="noise_mode.*'fixed'"):
        G(z, noise_mode="fixed")


def test_truncation_pulls_towards_the_tracked_average():
    G = tiny_generator()
    G.train()
    G.mapping(torch.randn(64, 16))  # training mode tracks the average w
    assert G.w_avg.abs().sum() > 0
    G.eval()
    before = G.w_avg.clone()
    z = torch.randn(4, 16)
    ws = G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws, before.expand_as(ws))
    assert torch.equal(G.w_avg, before)  # eval mode does not update it
    half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, (G.mapping(z) + ws) / 2, atol=1e-6)


def test_style_mix_takes_the_tail_from_the_second_latent():
    G = tiny_generator()
    ws1, ws2 = G.mapping(torch.randn(2, 16)), G.mapping(torch.randn(2, 16))
    mixed = style_mix(ws1, ws2, 3)
    assert torch.equal(mixed[:, :3], ws1[:, :3]) and torch.equal(mixed[:, 3:], ws2[:, 3:])


def test_wrong_latent_shapes_are_errors():
    G = tiny_generator()
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, 15))
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.randn(2, 3, 16))
    D = build_discriminator("swagan", 32, **{k: TINY[k] for k in ("channel_multiplier", "channel_max")})
    with pytest.raises(ValueError, match="32x32"):
        D(torch.randn(2, 3, 64, 64))


def test_discriminator_supports_r1_double_backward():
    D = build_discriminator("swagan", 32, channel_multiplier=1, channel_max=16)
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(D(img).sum(), img, create_graph=True)
    grad.square().sum().backward()
    no_grad = [n for n, p in D.named_parameters() if p.grad is None]
    assert no_grad == ["final_linear.1.bias"]  # the only parameter the input gradient cannot depend on


def test_generator_supports_path_length_gradients():
    G = tiny_generator()
    G.train()
    ws = G.mapping(torch.randn(2, 16)).detach().requires_grad_(True)
    img = G.synthesis(ws)
    (grad,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    grad.square().sum().backward()
    assert G.convs[0].conv.weight.grad is not None
