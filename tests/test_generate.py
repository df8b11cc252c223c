"""generate.py end to end on a tiny generator and a random small CLIP: outputs, metadata, regeneration, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from generate import generate
from magnet import build_discriminator, build_generator, load_generator
from magnet.clip import load_clip
from magnet.errors import MissingFileError, UserError
from magnet.search import ClipObjective, LatentSpace, parse_prompt, read_png_metadata

ROOT = Path(__file__).resolve().parents[1]
CLIP_MODEL = "ViT-S-32-alt"  # the smallest open_clip ViT; random weights (pretrained=None) offline
TINY = [
    f"clip.model_name={CLIP_MODEL}",
    "clip.pretrained=null",
    "search.strategy.num_initial_samples=4",
    "search.strategy.num_parents=2",
    "search.strategy.generations=1",
    "search.batch_size=8",
    "search.thumb_size=16",
    "inference.precision=fp32",  # today's exact path; the fast one (bf16, screening) has tests of its own
    "search.screen.keep=0",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    g = build_generator("swagan", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)
    d = build_discriminator("swagan", size=32, channel_multiplier=1, channel_max=32)
    torch.save({"g_ema": g.state_dict(), "d": d.state_dict()}, folder / "tiny.pt")
    torch.save({"d": d.state_dict()}, folder / "only_d.pt")
    return folder


def config(overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=overrides)


@pytest.fixture(scope="module")
def run(checkpoints, tmp_path_factory):
    """Two prompts from a text file, two seeds each, with a GIF: the paths and the output folder."""
    out = tmp_path_factory.mktemp("out")
    prompts = out / "prompts.txt"
    prompts.write_text("# a comment\norange triangles | blue:0.5\n\na red circle\n")
    cfg = config(
        [
            *TINY,
            f"ckpt_path={checkpoints / 'tiny.pt'}",
            f"prompts={prompts}",
            "n_images=2",
            "seed=3",
            "output.gif=true",
            f"output_dir={out}",
        ]
    )
    return generate(cfg), out


def test_writes_a_painting_per_prompt_and_seed_with_its_recipe(run, checkpoints):
    paths, out = run
    assert [p.relative_to(out).as_posix() for p in paths] == [
        "00_orange-triangles-blue-0-5/seed_3/painting.png",
        "00_orange-triangles-blue-0-5/seed_4/painting.png",
        "01_a-red-circle/seed_3/painting.png",
        "01_a-red-circle/seed_4/painting.png",
    ]
    meta = read_png_metadata(paths[1])
    assert meta["prompt"] == "orange triangles | blue:0.5" and meta["seed"] == 4
    assert meta["checkpoint"] == str((checkpoints / "tiny.pt").resolve())
    assert meta["settings"]["search"]["strategy"]["num_initial_samples"] == 4 and meta["space"] == "z"
    with Image.open(paths[1]) as png:
        assert png.size == (32, 32) and png.mode == "RGB"
    folder = paths[1].parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "generation_00.png",
        "generation_01.png",
        "painting.png",
        "search.gif",
        "search.json",
    ]
    with Image.open(folder / "search.gif") as gif:
        assert gif.n_frames == 2
    record = json.loads((folder / "search.json").read_text())
    assert [len(g["scores"]) for g in record["generations"]] == [4, 2 + 4]
    assert [g["num_parents"] for g in record["generations"]] == [0, 2]
    assert record["renders"] == 8 and record["seed"] == 4
    assert record["best_scores"][-1] == pytest.approx(meta["score"])
    assert max(record["generations"][-1]["scores"]) == pytest.approx(meta["score"])


def test_the_stored_score_is_the_clip_score_of_the_stored_latent(run, checkpoints):
    paths, _ = run
    meta = read_png_metadata(paths[2])
    generator = load_generator(checkpoints / "tiny.pt")
    image = LatentSpace(generator, meta["space"], meta["truncation_psi"]).render_one(meta["latent"])
    torch.manual_seed(0)  # generate.py seeds torch with 0 before it builds CLIP's random weights
    objective = ClipObjective(load_clip(CLIP_MODEL, None), parse_prompt("a red circle"))
    with torch.no_grad():
        assert float(objective(image[None])) == pytest.approx(meta["score"], abs=1e-5)


def test_a_painting_is_regenerated_from_its_png_alone(run, tmp_path):
    paths, _ = run
    again = generate(config([f"from_png={paths[0]}", f"output_dir={tmp_path}"]))[0]
    assert read_png_metadata(again) == read_png_metadata(paths[0])
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(paths[0])))


def test_same_seed_same_painting(run, checkpoints, tmp_path):
    paths, _ = run
    cfg = config(
        [
            *TINY,
            f"ckpt_path={checkpoints / 'tiny.pt'}",
            "prompt=a red circle",
            "seed=4",
            "output.contact_sheets=false",
            f"output_dir={tmp_path}",
        ]
    )
    again = generate(cfg)[0]
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(paths[3])))
    assert read_png_metadata(again)["latent"] == read_png_metadata(paths[3])["latent"]


def test_a_screened_search_scores_the_best_previews_of_the_initial_population_at_full_size(checkpoints, tmp_path):
    screen = ["search.strategy.num_initial_samples=8", "search.screen.preview_size=16", "search.screen.keep=2"]
    cfg = config([*TINY, *screen, f"ckpt_path={checkpoints / 'tiny.pt'}", "prompt=a red circle",
                  f"output_dir={tmp_path}"])
    path = generate(cfg)[0]
    record = json.loads((path.parent / "search.json").read_text())
    assert (record["previews"], record["renders"]) == (8, 2 + 4)
    assert [len(g["scores"]) for g in record["generations"]] == [2, 2 + 4]
    meta = read_png_metadata(path)
    assert meta["settings"]["search"]["screen"] == {"preview_size": 16, "keep": 2}
    assert meta["score"] == pytest.approx(record["best_scores"][-1])  # float32 search: the painting's own score


def test_refinement_in_w_plus_with_the_discriminator(checkpoints, tmp_path):
    cfg = config(
        [
            *TINY,
            f"ckpt_path={checkpoints / 'tiny.pt'}",
            "prompt=a red circle",
            "refine.steps=2",
            "refine.num_cutouts=1",
            "refine.realism_weight=0.5",
            "output.contact_sheets=false",
            f"output_dir={tmp_path}",
        ]
    )
    path = generate(cfg)[0]
    meta = read_png_metadata(path)
    assert meta["space"] == "w+" and np.shape(meta["latent"]) == (6, 32)  # n_latent of a 32 px SWAGAN
    again = generate(config([f"from_png={path}", f"output_dir={tmp_path / 'again'}"]))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(path)))


def test_bad_input_fails_with_clear_errors(checkpoints, tmp_path):
    ckpt = f"ckpt_path={checkpoints / 'tiny.pt'}"
    with pytest.raises(ValueError, match="empty"):  # caught before the (here missing) checkpoint is read
        generate(config([*TINY, "ckpt_path=/nowhere.pt", "prompt=' | '"]))
    with pytest.raises(ValueError, match="exactly one of"):
        generate(config([*TINY, ckpt, "prompt=a", "prompts=[b]"]))
    with pytest.raises(MissingFileError, match="checkpoint /nowhere/g.pt does not exist"):
        generate(config([*TINY, "ckpt_path=/nowhere/g.pt", "prompt=a cat"]))
    with pytest.raises(MissingFileError, match=f"checkpoint {checkpoints} is a folder, not a file; .* such as"):
        generate(config([*TINY, f"ckpt_path={checkpoints}", "prompt=a cat"]))
    with pytest.raises(UserError, match=r"only_d.pt holds no 'g_ema' network: it is a checkpoint in rosinality"):
        generate(config([*TINY, f"ckpt_path={checkpoints / 'only_d.pt'}", "prompt=a cat"]))
    torch.save({"weight": torch.zeros(3)}, tmp_path / "not_a_gan.pt")
    with pytest.raises(UserError, match="not_a_gan.pt: 'g_ema' is not a StyleGAN2/SWAGAN generator"):
        generate(config([*TINY, f"ckpt_path={tmp_path / 'not_a_gan.pt'}", "prompt=a cat"]))
    with pytest.raises(FileNotFoundError, match="prompts='missing.txt' is not a file"):
        generate(config([*TINY, ckpt, "prompts=missing.txt"]))
    with pytest.raises(FileNotFoundError, match="no_such.png"):
        generate(config([f"from_png={tmp_path / 'no_such.png'}", f"output_dir={tmp_path}"]))


def test_cli_prints_the_path_and_truncates_a_prompt_past_77_tokens_with_a_warning(checkpoints, tmp_path):
    long_prompt = " ".join(["a very long description of a modern painting"] * 12)
    cmd = [
        sys.executable,
        "generate.py",
        *TINY,
        f"ckpt_path={checkpoints / 'tiny.pt'}",
        f"prompt='{long_prompt}'",
        "output.contact_sheets=false",
        f"hydra.run.dir={tmp_path}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "UserWarning: prompt longer than CLIP's 77 tokens, truncated" in proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path / ("00_" + "-".join(long_prompt.split())[:60]) / "seed_0"
    assert read_png_metadata(path)["prompt"] == long_prompt


def test_a_diverged_checkpoint_is_refused_naming_the_tensor_and_nothing_is_written(checkpoints, tmp_path):
    ckpt = torch.load(checkpoints / "tiny.pt", weights_only=True)
    ckpt["g_ema"]["convs.2.conv.weight"].view(-1)[5] = float("nan")
    torch.save(ckpt, tmp_path / "nan.pt")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"nan.pt: 'g_ema' has NaN/Inf values in convs\.2\.conv\.weight"):
        generate(config([*TINY, f"ckpt_path={tmp_path / 'nan.pt'}", "prompt=a cat", f"output_dir={out}"]))
    assert not out.exists()


def test_a_painting_that_is_not_finite_is_never_written(checkpoints, tmp_path):
    """Finite weights so large that the image overflows: the search runs, the black PNG is refused."""
    ckpt = torch.load(checkpoints / "tiny.pt", weights_only=True)
    ckpt["g_ema"]["to_rgb1.bias"].fill_(3e38)
    ckpt["g_ema"]["to_rgbs.0.bias"].fill_(3e38)
    torch.save(ckpt, tmp_path / "overflow.pt")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"refusing to write .*painting.png: \d+ of its \d+ values are NaN/Inf"):
        generate(config([*TINY, f"ckpt_path={tmp_path / 'overflow.pt'}", "prompt=a cat", f"output_dir={out}"]))
    assert not list(out.rglob("*.png"))


def test_refinement_never_ends_below_the_search(checkpoints, tmp_path):
    """Big Adam steps through the cutouts lower the whole image's score here: the best latent seen is kept."""
    cfg = config([*TINY, f"ckpt_path={checkpoints / 'tiny.pt'}", "prompt=a red circle", "refine.steps=2",
                  "refine.lr=10", "refine.num_cutouts=1", "output.contact_sheets=false", f"output_dir={tmp_path}"])
    path = generate(cfg)[0]
    searched = json.loads((path.parent / "search.json").read_text())["best_scores"][-1]
    meta = read_png_metadata(path)
    assert meta["space"] == "w+" and meta["score"] >= searched - 1e-6


def test_realism_refinement_reads_the_discriminator_of_our_own_training(trained_checkpoint, tmp_path):
    cfg = config([*TINY, f"ckpt_path={trained_checkpoint}", "prompt=a red circle", "refine.steps=1",
                  "refine.num_cutouts=1", "refine.realism_weight=0.5", "output.contact_sheets=false",
                  f"output_dir={tmp_path}"])
    meta = read_png_metadata(generate(cfg)[0])
    assert meta["space"] == "w+" and meta["checkpoint"] == str(trained_checkpoint.resolve())
