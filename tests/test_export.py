"""Export: any checkpoint magnet reads -> rosinality's layout or safetensors -> the same networks back."""

import subprocess
import sys
import warnings
from pathlib import Path

import naive_reference as ref
import nvlabs_format as fmt
import pytest
import torch
from rosinality_format import save_rosinality

from magnet import load_discriminator, load_generator
from magnet.errors import UserError
from magnet.models.export import export_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16)


def nvlabs_pickle(path):
    """A published-style NVlabs pickle (conv_clamp 256) of a 32 px stylegan2."""
    gen = torch.Generator().manual_seed(0)
    fmt.write_nvlabs_pickle(path, fmt.random_g_state(gen, 32, 16, 2, 512, 16), fmt.random_d_state(gen, 32, 512, 16),
                            fmt.g_kwargs(32, 16, 2, 512, 16), fmt.d_kwargs(32, 512, 16))
    return path


def assert_same_networks(source, exported):
    for load, key in ((load_generator, "g_ema"), (load_generator, "g"), (load_discriminator, "d")):
        a, b = load(source, key=key), load(exported, key=key)
        assert a.config == b.config
        state_a, state_b = a.state_dict(), b.state_dict()
        assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    G, G2 = load_generator(source), load_generator(exported)
    z = torch.randn(4, G.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            images = [g(z, truncation_psi=psi, noise_mode="const") for g in (G, G2)]
            assert torch.equal(*images)


@pytest.mark.parametrize("fmt_name", ["rosinality", "safetensors"])
@pytest.mark.parametrize("source", ["nvlabs", "rosinality swagan"])
def test_export_loads_back_as_the_same_networks(tmp_path, source, fmt_name):
    if source == "nvlabs":
        path = nvlabs_pickle(tmp_path / "metfaces.pkl")
    else:
        path = tmp_path / "magnet_era.pt"
        save_rosinality(path, "swagan", 32, from_rgb_kernel=1, **TINY)
    out = tmp_path / "out" / f"model.{'pt' if fmt_name == 'rosinality' else 'safetensors'}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert export_checkpoint(path, fmt_name, out) == out
    clamp_warnings = [w for w in caught if "conv_clamp=256 and rosinality's code has no clamp" in str(w.message)]
    assert len(clamp_warnings) == (source == "nvlabs" and fmt_name == "rosinality")
    assert_same_networks(path, out)
    if source == "nvlabs":
        assert load_generator(out).config.conv_clamp == 256  # kept by magnet's loader in both formats


def test_our_training_checkpoint_exports_to_both(trained_checkpoint, tmp_path):
    for fmt_name, name in (("rosinality", "ours.pt"), ("safetensors", "ours.safetensors")):
        export_checkpoint(trained_checkpoint, fmt_name, tmp_path / name)
        assert_same_networks(trained_checkpoint, tmp_path / name)


def test_the_rosinality_export_is_what_rosinality_reads(tmp_path):
    """Plain torch.load (no allow-listed classes, as torch >= 2.6 loads by default), rosinality's key layout with
    its filters, and its forward pass (the naive reference follows rosinality's code) gives our images."""
    source = tmp_path / "src.pt"
    save_rosinality(source, "swagan", 32, **TINY)
    export_checkpoint(source, "rosinality", tmp_path / "out.pt")
    ckpt = torch.load(tmp_path / "out.pt", weights_only=True)
    original = torch.load(source, weights_only=False)
    assert {"g", "g_ema", "d", "latent_avg"} <= set(ckpt)
    for key in ("g_ema", "d"):
        assert {k: v.shape for k, v in ckpt[key].items()} == {k: v.shape for k, v in original[key].items()}
    G = load_generator(source)
    assert torch.equal(ckpt["latent_avg"], G.w_avg)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        image, _ = ref.generate(ckpt["g_ema"], [ref.mapping(ckpt["g_ema"], z)], wavelet=True)
        assert (image - G(z, noise_mode="const")).abs().max() < 1e-4


def test_export_from_the_command_line(tmp_path):
    source = nvlabs_pickle(tmp_path / "metfaces.pkl")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "metfaces.safetensors"
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"ckpt_path={source}", "format=safetensors",
                          f"out={out}"], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == str(out) and out.is_file()
    assert not list(cwd.iterdir())  # nothing but `out`: no outputs/ folder, no log
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"ckpt_path={source}", "format=onnx",
                          f"out={out}"], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == "error: format='onnx' is not an export format; use one of rosinality, safetensors"


def test_bad_safetensors_files_are_named_in_one_line(tmp_path):
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    export_checkpoint(nvlabs_pickle(tmp_path / "m.pkl"), "safetensors", good)
    (tmp_path / "cut.safetensors").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match=r"cut\.safetensors is a corrupt or cut short safetensors file") as info:
        load_generator(tmp_path / "cut.safetensors")
    assert "\n" not in str(info.value)
    save_file({"unet.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UserError, match=r"other\.safetensors holds no 'g_ema' network: it is a safetensors file "
                                        r"of another model \(1 tensors such as unet\.weight\)"):
        load_generator(tmp_path / "other.safetensors")
    with pytest.raises(UserError, match=r"out=.* is a folder"):
        export_checkpoint(good, "rosinality", tmp_path)
