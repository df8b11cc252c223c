"""GPU presets on a CPU: the GPU experiments compose with them, channels_last trains, compile keeps checkpoint keys."""

import csv
import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from train_config import CONF, compose_train

from magnet import load_generator
from magnet.entrypoints import apply_extras
from magnet.errors import UserError
from magnet.nn.checkpoint import read_checkpoint
from magnet.training.module import GAN
from train import train

TINY_NETWORK = dict(arch="swagan", size=32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16)


@pytest.mark.parametrize("experiment", ["swagan256", "swagan512", "stylegan2_512"])
def test_gpu_experiments_compose_with_compile_and_channels_last(experiment):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "model.compile=true",
                                          "model.channels_last=true"])
    assert cfg.model.compile is True and cfg.model.channels_last is True
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.extras.tf32 is True


@pytest.mark.parametrize("setting", ["model.compile=yes", "model.channels_last=maybe", "extras.tf32=on"])
def test_a_switch_that_is_no_bool_is_refused_naming_it(tmp_path, setting):
    key, value = setting.split("=")
    cfg = compose_train(tmp_path, tmp_path, setting)
    with pytest.raises(UserError, match=rf"^{re.escape(key)}={value!r}: must be true or false$"):
        apply_extras(cfg)
        train(cfg)


@pytest.mark.parametrize("enabled", [False, True])
def test_extras_tf32_sets_the_cuda_math_flags(tmp_path, enabled):
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        apply_extras(compose_train(tmp_path, tmp_path, f"extras.tf32={str(enabled).lower()}"))
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (enabled, enabled)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_tiny_model_trains_two_batches_in_channels_last(tmp_path, tiny_paintings):
    train(compose_train(tmp_path / "run", tiny_paintings, "model.total_kimg=0.008", "model.channels_last=true"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(last)["state_dict"]
    assert int(state["nimg"]) == 8 and int(state["batches"]) == 2
    convs = {k: v for k, v in state.items() if k.startswith(("D.", "G.", "g_ema.")) and v.dim() == 4
             and v.shape[1] > 1 and v.shape[2] > 1}
    assert {k.split(".")[0] for k in convs} >= {"D"}
    assert all(v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous() for v in convs.values())
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    G = load_generator(last)  # inference reads the NHWC weights into its own layout
    assert all(torch.equal(v, state[f"g_ema.{k}"]) for k, v in G.state_dict().items())
    rows = list(csv.DictReader(open(next((tmp_path / "run").glob("csv/*/metrics.csv")))))
    first = [float(row["perf/first_step_s"]) for row in rows if row.get("perf/first_step_s")]
    assert len(set(first)) == 1 and first[0] > 0  # one figure, the first batch's (the CSV may repeat it)


def test_compiled_networks_leave_the_checkpoint_keys_as_eager_ones():
    """torch.compile wraps lazily (compiling happens at the first call, tens of seconds on a CPU), so the
    wrappers are real here; what a checkpoint holds is the module's state_dict."""
    torch.manual_seed(0)
    eager, compiled = GAN(network=TINY_NETWORK), GAN(network=TINY_NETWORK, compile=True)
    for module in (eager, compiled):
        module.setup("fit")
    assert compiled._discriminate is not compiled.D.forward
    assert getattr(compiled._discriminate, "_torchdynamo_orig_callable", None) == compiled.D.forward
    assert getattr(compiled._synthesis, "_torchdynamo_orig_callable", None) == compiled.G.synthesis
    assert eager._discriminate == eager.D.forward  # no wrapper when compile is off
    keys = list(compiled.state_dict())
    assert keys == list(eager.state_dict()) and not any("_orig_mod" in k for k in keys)
