"""Projection of an image into a tiny generator, its outputs and the perceptual distances it uses."""

from pathlib import Path
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from explore import explore
from generate import generate
from magnet import build_discriminator, build_generator
from magnet.errors import MissingFileError, UserError
from magnet.explore.perceptual import ClipDistance, DiscriminatorDistance, InceptionDistance, map_distance
from magnet.explore.projection import Projection, learning_rate, noise_regularization, psnr, read_target
from magnet.images import load_square, to_uint8
from magnet.search import LatentSpace, read_png_metadata

ROOT = Path(__file__).resolve().parents[1]
FAST = {"w_avg_samples": 500, "video": False, "perceptual": "none"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny SWAGAN checkpoint, its generator, and an image it made from a known w (as a PNG)."""
    folder = tmp_path_factory.mktemp("project")
    torch.manual_seed(0)
    g = build_generator("swagan", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    with torch.no_grad():  # the image is linear in the RGB layers: scaled so its pixels fit in [-1, 1] (a PNG)
        for to_rgb in [g.to_rgb1, *g.to_rgbs]:
            to_rgb.conv.weight.mul_(0.25)
    d = build_discriminator("swagan", size=32, channel_multiplier=1, channel_max=16)
    torch.save({"g_ema": g.state_dict(), "d": d.state_dict()}, folder / "tiny.pt")
    with torch.no_grad():
        w = g.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(5)))[:, 0]
        image = g.synthesis(w, noise_mode="const")[0]
    Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy()).save(folder / "made.png")
    return SimpleNamespace(folder=folder, ckpt=folder / "tiny.pt", generator=g, w=w[0], png=folder / "made.png")


def test_schedule_is_the_projectors(tiny):
    lrs = [learning_rate(t / 100, 0.1, 0.05, 0.25) for t in range(100)]
    assert lrs[0] == 0 and lrs[5] == pytest.approx(0.1) and lrs[74] == pytest.approx(0.1)
    assert lrs[87] == pytest.approx(0.1 * (0.5 - 0.5 * np.cos(np.pi * 13 / 25)))  # cosine ramp-down
    white = [torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))]
    assert float(noise_regularization(white)) < 1e-2  # white noise is barely correlated
    smooth = F.avg_pool2d(white[0], 3, 1, 1)
    assert float(noise_regularization([smooth / smooth.std()])) > 100 * float(noise_regularization(white))


def test_projection_recovers_an_image_the_generator_made_and_leaves_it_untouched(tiny):
    before = {k: v.clone() for k, v in tiny.generator.state_dict().items()}
    target = read_target(tiny.png, 32)
    found = Projection(image=str(tiny.png), space="w", steps=80, **FAST).project(tiny.generator, target)
    assert found.losses[-1] < 0.01 * found.losses[0]
    start = LatentSpace(tiny.generator, "w").render_one(tiny.generator.mean_w(500))
    assert psnr(start, target) < 25 < 40 < psnr(found.image, target)  # from the mean w to the image (50 dB)
    torch.testing.assert_close(LatentSpace(tiny.generator, "w").render_one(found.latent), found.image)
    for k, v in tiny.generator.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in tiny.generator.parameters())


def test_w_plus_and_noise_maps_with_a_perceptual_distance_reduce_the_loss(tiny, museum_paintings):
    target = read_target(museum_paintings[0], 32)
    settings = Projection(image=str(museum_paintings[0]), steps=8, optimize_noise=True, perceptual_size=96,
                          **{**FAST, "perceptual": "inception"})
    distance = InceptionDistance(size=96)
    found = settings.project(tiny.generator, target, distance)
    assert found.latent.shape == (tiny.generator.n_latent, 32) and len(found.noises) == tiny.generator.num_layers
    assert found.losses[-1] < found.losses[0]
    for noise in found.noises:  # renormalised after every step
        assert float(noise.mean()) == pytest.approx(0, abs=1e-5) and float(noise.std()) == pytest.approx(1, abs=0.1)
    const = tiny.generator.noise_maps("const")
    assert not any(torch.equal(n, c) for n, c in zip(found.noises, const))  # the model's own maps are untouched


def config(*overrides):
    """explore.py's config as @hydra.main hands it over (its HydraConfig set: paths resolve through it)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("explore", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def test_explore_writes_a_painting_that_from_png_renders_again_and_a_video(tiny, tmp_path):
    out = tmp_path / "projection"
    path = explore(config("explore=project", f"ckpt_path={tiny.ckpt}", f"explore.image={tiny.png}",
                          "explore.space=w", "explore.steps=30", "explore.frame_every=10", "explore.perceptual=none",
                          "explore.w_avg_samples=500", f"output_dir={out}"))
    assert path == out / "painting.png"
    meta = read_png_metadata(path)
    assert meta["checkpoint"] == str(tiny.ckpt.resolve()) and meta["space"] == "w"
    assert meta["projection"]["image"] == str(tiny.png.resolve()) and meta["projection"]["psnr"] > 20
    again = generate(compose_generate(f"from_png={path}", f"output_dir={tmp_path / 'again'}"))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(path)))
    rendered = LatentSpace(tiny.generator, "w").render_one(meta["latent"])
    assert psnr(rendered, read_target(tiny.png, 32)) == pytest.approx(meta["projection"]["psnr"])
    frames = imageio.mimread(out / "projection.mp4", memtest=False)
    assert len(frames) == 4 and frames[0].shape == (256, 512, 3)  # steps 0, 10, 20, 29; target | projection
    target = np.asarray(Image.open(out / "target.png"))
    np.testing.assert_array_equal(target, load_square(tiny.png, 32).permute(1, 2, 0).numpy())


def compose_generate(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=list(overrides))


def test_bad_input_is_one_line(tiny, tmp_path):
    out = f"output_dir={tmp_path}"
    text = tmp_path / "not_an_image.jpg"
    text.write_text("hello")
    with pytest.raises(UserError, match=r"^explore.image='.*not_an_image.jpg': must be an image file that can be "
                                        r"read \(jpg, png, webp\): cannot identify image file"):
        explore(config("explore=project", f"ckpt_path={tiny.ckpt}", f"explore.image={text}", out))
    with pytest.raises(MissingFileError, match="image='nowhere.png': must be an existing image file"):
        read_target("nowhere.png", 32)
    with pytest.raises(MissingFileError, match="explore.image='nowhere.png': must be an existing image file"):
        explore(config("explore=project", f"ckpt_path={tiny.ckpt}", "explore.image=nowhere.png", out))
    with pytest.raises(UserError, match="explore.image not set: give explore.image=... on the command line"):
        explore(config("explore=project", f"ckpt_path={tiny.ckpt}", out))
    with pytest.raises(MissingFileError, match="lpips_vgg_weights=None is not a file: LPIPS needs torchvision's "
                                               "vgg16-397923af.pth"):
        Projection(image=str(tiny.png), perceptual="lpips")
    with pytest.raises(UserError, match="clip_model='nope': must be an open_clip model"):
        Projection(image=str(tiny.png), perceptual="clip", clip_model="nope")
    with pytest.raises(MissingFileError, match="clip_pretrained='/no/clip.pt': must be an existing weights file"):
        Projection(image=str(tiny.png), perceptual="clip", clip_pretrained="/no/clip.pt")
    with pytest.raises(MissingFileError, match="explore.lpips_vgg_weights='vgg.pth': must be an existing"):
        explore(config("explore=project", f"ckpt_path={tiny.ckpt}", f"explore.image={tiny.png}",
                       "explore.lpips_vgg_weights=vgg.pth", out))


def blurred(x):
    return F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, 1)


def noised(x):
    return x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def paintings(museum_paintings):
    return torch.stack([load_square(p, 64).float() / 127.5 - 1 for p in museum_paintings[:3]])


def test_inception_distance_zero_for_the_same_image_larger_for_blur_than_slight_noise(paintings):
    distance = InceptionDistance(size=128)
    with torch.no_grad():
        same, blur, noise = (distance(paintings, other) for other in (paintings, blurred(paintings), noised(paintings)))
        others = distance(paintings, paintings.roll(1, 0))
    assert torch.all(same.abs() < 1e-6)
    assert torch.all(noise < blur) and torch.all(blur < others)  # another painting is further still


def test_map_distance_is_lpips_without_weights():
    fx, fy = torch.randn(2, 5, 3, 3), torch.randn(2, 5, 3, 3)
    by_hand = torch.tensor([sum(float(((fx[n, :, i, j] / fx[n, :, i, j].norm() - fy[n, :, i, j] / fy[n, :, i, j].norm())
                                      ** 2).sum()) for i in range(3) for j in range(3)) / 9 for n in range(2)])
    torch.testing.assert_close(map_distance([fx], [fy]), by_hand.float())


@pytest.mark.parametrize("arch, sizes", [("swagan", [16, 8, 4]), ("stylegan2", [64, 32, 16, 8, 4])])
def test_discriminator_and_clip_distances_are_zero_only_for_the_same_image(arch, sizes, paintings, random_clip):
    d = build_discriminator(arch, size=64, channel_multiplier=1, channel_max=16)
    maps = d.feature_maps(paintings)
    assert [m.shape[-1] for m in maps] == sizes  # every block's output (SWAGAN's first reads 32 px bands)
    torch.testing.assert_close(maps[-1], d.features(paintings))
    for distance in (DiscriminatorDistance(d), ClipDistance(random_clip)):
        with torch.no_grad():
            assert torch.all(distance(paintings, paintings).abs() < 1e-5)
            assert torch.all(distance(paintings, blurred(paintings)) > 1e-4)
        x = paintings[:1].clone().requires_grad_(True)
        distance(x, paintings[1:2]).sum().backward()
        assert x.grad.abs().sum() > 0


def test_lpips_reads_a_local_vgg_file_and_agrees_with_the_lpips_package(tmp_path, paintings):
    pytest.importorskip("lpips")
    import torchvision

    from magnet.explore.perceptual import LpipsDistance

    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "vgg16.pth")
    ours = LpipsDistance(tmp_path / "vgg16.pth", size=64)
    for name, param in ours.lpips.net.named_parameters():  # slice<k>.<index>.weight <- features.<index>.weight
        torch.testing.assert_close(param, features.state_dict()[name.split(".", 1)[1]], rtol=0, atol=0)
    with torch.no_grad():  # embed + compare is the package's own forward (images already at `size`)
        torch.testing.assert_close(ours(paintings, blurred(paintings)),
                                   ours.lpips(paintings, blurred(paintings)).flatten(), rtol=1e-4, atol=1e-6)
        assert torch.all(ours(paintings, paintings).abs() < 1e-6)
        assert torch.all(ours(paintings, noised(paintings)) < ours(paintings, blurred(paintings)))
    with pytest.raises(MissingFileError, match="lpips_vgg_weights=None is not a file: LPIPS needs torchvision's"):
        LpipsDistance(None)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="has no features.0.weight of shape"):
        LpipsDistance(tmp_path / "other.pth")
