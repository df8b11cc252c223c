"""magnet.precision: the setting, the hardware check, float32 left exact, bf16 close to it, in every reader."""

from pathlib import Path

import pytest
import torch

from magnet import build_generator
from magnet.errors import ConfigError
from magnet.images import to_uint8
from magnet.metrics import generated_features
from magnet.precision import autocast, has_native_bf16, resolve
from magnet.search import LatentSpace


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return build_generator("swagan", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU's flags from /proc/cpuinfo")
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_instructions():
    native = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert has_native_bf16("cpu") is native
    assert resolve("auto", "cpu") == ("bf16" if native else "fp32")
    assert resolve("auto", torch.device("meta")) == "fp32"  # a device with no bf16 check: never guessed
    assert (resolve("fp32", "cpu"), resolve("bf16", "cpu")) == ("fp32", "bf16")  # explicit settings are kept


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None, 16])
def test_a_bad_precision_is_one_line_naming_the_setting(bad):
    with pytest.raises(ConfigError) as info:
        resolve(bad, "cpu")
    assert str(info.value) == f"precision={bad!r}: must be one of fp32, bf16, auto"


def test_fp32_is_exactly_todays_render_and_bf16_is_close(generator):
    space = LatentSpace(generator)
    z = space.sample(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        today = generator.synthesis(generator.mapping(z), noise_mode="const")
        fp32 = space.render(z, precision="fp32")
        bf16 = space.render(z, precision="bf16")
    assert torch.equal(fp32, today)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, today)  # bf16 really ran, handed back as fp32
    assert (bf16 - today).abs().mean() < 0.02 * today.abs().mean()
    assert (to_uint8(bf16).int() - to_uint8(today).int()).abs().float().mean() < 2  # within 2/255 on average


def test_autocast_runs_matmuls_in_bf16_only_when_asked():
    a = torch.randn(8, 8)
    with autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32
    with autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16


def test_clip_under_bf16_autocast_on_a_cpu_runs_a_bf16_copy_of_its_image_tower(random_clip):
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with autocast("bf16", "cpu"):
        bf16 = random_clip.encode_images(images)  # makes the bf16 copy
    calls = []
    hooks = [tower.register_forward_hook(lambda module, args, out, name=name: calls.append((name, out.dtype)))
             for name, tower in (("fp32", random_clip.model.visual), ("bf16", random_clip._visual_bf16))]
    fp32 = random_clip.encode_images(images)
    with autocast("bf16", "cpu"):
        again = random_clip.encode_images(images)
    for hook in hooks:
        hook.remove()
    assert calls == [("fp32", torch.float32), ("bf16", torch.bfloat16)]
    assert next(random_clip.model.visual.parameters()).dtype == torch.float32  # the model itself is untouched
    assert torch.equal(again, bf16) and bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert torch.nn.functional.cosine_similarity(bf16, fp32).min() > 0.99


class Mean(torch.nn.Module):
    def forward(self, images):
        return images.float().mean((2, 3))


def test_generated_features_quantise_the_bf16_synthesis_like_the_fp32_one(generator):
    def features(precision):
        return generated_features(generator, {"mean": Mean()}, 6, batch_size=4, noise_mode="const", seed=3,
                                  progress=False, precision=precision)["mean"]

    z = torch.randn(6, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = to_uint8(generator(z, noise_mode="const")).float().mean((2, 3))
    assert torch.equal(features("fp32"), expected)
    assert (features("bf16") - expected).abs().max() < 2  # mean colour within 2 of 255
