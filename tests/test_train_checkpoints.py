"""What train.py accepts as ckpt_path (resume) and model.init_from (fine-tune): refusals in one line, and the
SWAGAN-64 checkpoint that rosinality's train.py writes (channel multiplier 2) fine-tuned end to end."""

import argparse
import zipfile

import hydra
import pytest
import torch
from PIL import Image, ImageOps
from rosinality_format import save_rosinality
from train_config import compose_train

from magnet import build_generator
from magnet.errors import UserError, find_user_error
from magnet.nn.checkpoint import read_checkpoint
from train import train

TINY = dict(style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16)  # train_config's TINY networks


def _not_resumable(folder):
    """(file, what the refusal must say) for every kind of file that is not a training checkpoint of ours."""
    rosinality = folder / "rosinality.pt"
    save_rosinality(rosinality, "swagan", 32, **TINY)
    yield rosinality, (f"is a generator checkpoint in rosinality/MAGnet's layout \\(g_ema, g, d\\), not a training "
                       f"checkpoint that train.py can resume; to fine-tune from it use model.init_from={rosinality}$")
    converted = folder / "converted.pt"  # rosinality's convert_weight.py: a generator and latent_avg, no args
    torch.save({"g_ema": build_generator("stylegan2", 32, **TINY).state_dict(), "latent_avg": torch.zeros(16)},
               converted)
    yield converted, r"layout \(g_ema\), not a training checkpoint.*give the last.ckpt of a training run"
    bare = folder / "bare.pt"
    torch.save(build_generator("swagan", 32, **TINY).state_dict(), bare)
    yield bare, r"is a bare state dict of \d+ tensors, not a training checkpoint"
    other = folder / "other.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(2)}, "pytorch-lightning_version": "2.5"}, other)
    yield other, r"is a Lightning checkpoint of another model \(modules net\)"
    args_only = folder / "args.pt"
    torch.save({"args": argparse.Namespace(size=32)}, args_only)
    yield args_only, r"is a dict with keys args, not a training checkpoint"
    archive = folder / "archive.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "hello")
    yield archive, "is a zip archive but not a PyTorch checkpoint"
    (folder / "empty.ckpt").touch()
    yield folder / "empty.ckpt", r"is an empty file \(0 bytes\)"
    yield folder, "is a folder, not a file"
    yield folder / "missing.ckpt", "does not exist"


def test_a_ckpt_path_that_cannot_be_resumed_is_refused_in_one_line_before_anything_slow(tmp_path, tiny_paintings):
    cfg = compose_train(tmp_path / "run", tiny_paintings)
    for path, expected in _not_resumable(tmp_path):
        cfg.ckpt_path = str(path)
        with pytest.raises(UserError, match=expected) as info:
            train(cfg)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before the data, the model or the trainer were made


def test_resuming_with_another_network_is_refused_naming_the_setting(tmp_path, tiny_paintings, trained_checkpoint):
    cfg = compose_train(tmp_path / "run", tiny_paintings, f"ckpt_path={trained_checkpoint}",
                        "model.network.channel_max=32")
    with pytest.raises(UserError, match=r"holds a generator swagan 32px style_dim=16 n_mlp=2 channels 16 at 4-16 px, "
                                        r"but model.network asks for .* channels 32 at 4-16 px .*"
                                        r"set model.network.channel_max=16 to match it$"):
        train(cfg)


def test_fine_tune_from_rosinalitys_swagan64_with_channel_multiplier_2(tmp_path, museum_paintings):
    """Its generator's shapes are the same with either multiplier, its discriminator's are not: the config
    that fits is found from both networks, the one that does not is refused naming the fix, and training runs."""
    paintings = tmp_path / "paintings"
    paintings.mkdir()
    for path in museum_paintings[:4]:
        with Image.open(path) as image:
            ImageOps.fit(image.convert("RGB"), (64, 64)).save(paintings / f"{path.stem}.png")
    source = tmp_path / "swagan64.pt"
    # the smallest widths where the multiplier matters: 260 channels at 64 px with multiplier 2, 256 with 1
    shape = dict(style_dim=8, n_mlp=1, channel_max=260)
    g_state, d_state = save_rosinality(source, "swagan", 64, channel_multiplier=2, **shape)
    overrides = ["data.size=64", "data.batch_size=1", "model.network.style_dim=8", "model.network.n_mlp=1",
                 "model.network.channel_max=260", "~callbacks.samples", f"model.init_from={source}"]
    wrong = compose_train(tmp_path / "wrong", paintings, *overrides, "model.network.channel_multiplier=1")
    with pytest.raises(Exception) as info:
        hydra.utils.instantiate(wrong.model, _convert_="all")
    assert str(find_user_error(info.value)) == (
        f"checkpoint {source} holds a discriminator swagan 64px channels 260 at 4-16 px, 260 at 64 px, but "
        "model.network asks for swagan 64px channels 260 at 4-16 px, 256 at 64 px (260 channels at 64 px, not 256); "
        "set model.network.channel_multiplier=2 to match it"
    )
    run = tmp_path / "run"
    train(compose_train(run, paintings, *overrides, "model.network.channel_multiplier=2",
                        "model.total_kimg=0.001"))
    state = read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    assert int(state["nimg"]) == 1
    assert state["D.from_rgbs.0.conv.0.weight"].shape == d_state["from_rgbs.0.conv.0.weight"].shape == (260, 12, 3, 3)
    assert state["G.convs.0.conv.weight"].shape == g_state["convs.0.conv.weight"].shape
    assert not torch.equal(state["G.convs.0.conv.weight"], g_state["convs.0.conv.weight"])  # trained
    assert torch.allclose(state["G.convs.0.conv.weight"], g_state["convs.0.conv.weight"], atol=0.05)  # from the file
