"""explore.py and magnet.explore on a tiny generator: walks (MP4 read back, GIF fallback), the video of a real
search, style mixing against hand-mixed W+, truncation against the mapping's own truncation, SeFa against
numpy's eigendecomposition, an edit re-rendered by generate.py from_png=, and every bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from explore import explore
from generate import generate
from magnet import build_generator, load_generator
from magnet.errors import ConfigError, UserError
from magnet.explore import (
    ExploreContext,
    WalkSettings,
    closed_form_directions,
    mixing_grid,
    sefa_grid,
    slerp,
    truncation_strip,
    walk_frames,
    walk_latents,
    write_walk,
)
from magnet.explore.layers import layer_span
from magnet.explore.searchvideo import best_so_far, search_frames
from magnet.explore.sefa import cached_directions
from magnet.images import to_uint8
from magnet.models.resolve import checkpoint_sha256
from magnet.search import auto_levels, read_png_metadata
from magnet.search.outputs import save_png

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ["clip.model_name=ViT-S-32-alt", "clip.pretrained=null", "search.strategy.num_initial_samples=4",
          "search.strategy.num_parents=2", "search.strategy.generations=2", "search.batch_size=8",
          "search.thumb_size=16", "output.contact_sheets=false"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """magnet's cache (SeFa directions) in a fresh folder, never the user's."""
    monkeypatch.setenv("MAGNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_generator(seed: int, style_dim: int = 16):
    torch.manual_seed(seed)
    return build_generator("swagan", size=32, style_dim=style_dim, n_mlp=2, channel_multiplier=1, channel_max=16)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Two tiny checkpoints of the same shape (a, b) and one of another style_dim (wide)."""
    folder = tmp_path_factory.mktemp("ckpts")
    for name, seed, dim in (("a", 0, 16), ("b", 1, 16), ("wide", 2, 32)):
        torch.save({"g_ema": tiny_generator(seed, dim).state_dict()}, folder / f"{name}.pt")
    return folder


@pytest.fixture(scope="module")
def generator(ckpts):
    return load_generator(ckpts / "a.pt").eval()


@pytest.fixture(scope="module")
def painted(ckpts, tmp_path_factory):
    """Two paintings of a real search with checkpoint a (seeds 3 and 4), as generate.py writes them."""
    out = tmp_path_factory.mktemp("painted")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("generate", overrides=[*SEARCH, f"ckpt_path={ckpts / 'a.pt'}", "prompt=a red circle", "seed=3",
                                             "n_images=2", f"output_dir={out}"])
    return generate(cfg)


def run_explore(tool: str, *overrides: str, out: Path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("explore", overrides=[f"explore={tool}", f"output_dir={out}", *overrides])
    return explore(cfg)


def synth(generator, ws) -> np.ndarray:
    """uint8 (N, H, W, 3) of W+ rendered with the stored noise, quantised as NVlabs does."""
    with torch.no_grad():
        return to_uint8(generator.synthesis(ws, noise_mode="const")).permute(0, 2, 3, 1).numpy()


def seed_w(generator, seed, psi=1.0):
    """W+ of a seed by hand: torch's Gaussian (the mapping's PixelNorm makes its norm irrelevant)."""
    z = torch.randn(1, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return generator.mapping(z, truncation_psi=psi)


def cell(grid: Image.Image, layout, row: int, col: int) -> np.ndarray:
    x, y = layout.origin(row, col)
    return np.asarray(grid)[y : y + layout.cell, x : x + layout.cell]


def close(a, b, tol=1):
    """uint8 images equal up to a rounding step (batches of another size round floats differently)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= tol


# ------------------------------------------------------------------------------------------------- walks


def test_slerp_moves_at_constant_angle_on_the_sphere():
    a, b = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    b = b * a.norm() / b.norm()
    t = torch.linspace(0, 1, 5)
    path = slerp(a, b, t).double()
    omega = np.arccos(float(a @ b / (a.norm() * b.norm())))
    angles = np.arccos(np.clip((path @ a.double() / (path.norm(dim=1) * a.norm())).numpy(), -1, 1))
    np.testing.assert_allclose(angles, t.numpy() * omega, atol=1e-5)
    np.testing.assert_allclose(path.norm(dim=1).numpy(), float(a.norm()), rtol=1e-5)


def test_walk_mp4_has_fps_times_seconds_frames_of_the_size_asked(generator, tmp_path):
    keyframes = torch.stack([seed_w(generator, s)[0] for s in (1, 2, 3)])
    path = write_walk(generator, keyframes, tmp_path / "walk", "w+", fps=10, seconds=1.3, size=48)
    frames = iio.imread(path, plugin="FFMPEG", index=None)
    assert path.suffix == ".mp4" and frames.shape == (13, 48, 48, 3)
    assert iio.immeta(path, plugin="FFMPEG")["fps"] == 10


def test_walk_endpoints_are_the_renders_of_the_endpoints_and_a_loop_comes_back(generator):
    zs = torch.randn(3, generator.style_dim, generator=torch.Generator().manual_seed(5))
    frames = list(walk_frames(generator, walk_latents(zs, 9, "z"), "z", truncation_psi=0.7))
    with torch.no_grad():
        ends = synth(generator, generator.mapping(zs[[0, 2]], truncation_psi=0.7))
    assert len(frames) == 9
    close(frames[0], ends[0], tol=0)
    close(frames[-1], ends[1], tol=0)
    close(frames[4], synth(generator, generator.mapping(zs[[1]], truncation_psi=0.7))[0], tol=0)  # keyframe 1
    ws = torch.stack([seed_w(generator, s)[0] for s in (1, 2)])
    looped = walk_latents(ws, 8, "w+", loop=True)
    torch.testing.assert_close(looped[0], ws[0])
    torch.testing.assert_close(looped[4], ws[1])
    torch.testing.assert_close(looped[6], (ws[0] + ws[1]) / 2)  # half-way back, not at the start again


def test_walk_between_two_paintings_starts_and_ends_on_them(painted, generator, tmp_path):
    settings = WalkSettings(paintings=[str(p) for p in painted], levels=True)
    keyframes, space, psi = settings.keyframes(generator)
    assert space == "z" and psi == 1.0  # plain z latents of the search: slerp
    frames = list(walk_frames(generator, walk_latents(keyframes, 5, space), space, psi, levels=True))
    first, last = (np.asarray(Image.open(p)) for p in painted)  # auto-levelled, as levels=true
    np.testing.assert_array_equal(frames[0], first)
    np.testing.assert_array_equal(frames[-1], last)
    path = run_explore("walk", f"explore.paintings=[{painted[0]},{painted[1]}]", "explore.fps=6", "explore.seconds=1",
                       "explore.levels=true", out=tmp_path)
    video = iio.imread(path, plugin="FFMPEG", index=None).astype(int)
    assert video.shape == (6, 32, 32, 3)
    assert np.abs(video[0] - first).mean() < np.abs(video[0] - last).mean()  # H.264 is lossy: nearer, not equal
    assert np.abs(video[-1] - last).mean() < np.abs(video[-1] - first).mean()


def test_without_ffmpeg_a_gif_is_written_and_one_line_says_so(generator, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no_ffmpeg"))
    keyframes = torch.stack([seed_w(generator, s)[0] for s in (1, 2)])
    path = write_walk(generator, keyframes, tmp_path / "walk", "w", fps=5, seconds=1)
    assert path == tmp_path / "walk.gif" and not (tmp_path / "walk.mp4").exists()
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (32, 32) and gif.info["duration"] == 200
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ffmpeg not found") and "walk.gif" in lines[0]


# ---------------------------------------------------------------------------------------- search video


def test_search_video_shows_the_best_painting_so_far_with_its_score(painted, generator, tmp_path):
    folder = painted[0].parent
    record = json.loads((folder / "search.json").read_text())
    best = best_so_far(record)
    assert [score for _, score in best] == pytest.approx(record["best_scores"])
    frames = list(search_frames(generator, record, frames_per_generation=2, levels=True))
    assert len(frames) == 2 * len(record["generations"]) == 6
    latent = torch.tensor(best[-1][0])[None]
    with torch.no_grad():
        image = generator.synthesis(generator.mapping(latent), noise_mode="const")[0]
    np.testing.assert_array_equal(frames[-1][:-14], auto_levels(image)[:-14])  # above the caption band
    assert (frames[-1][-14:] != auto_levels(image)[-14:]).any()  # the score is written on it
    np.testing.assert_array_equal(frames[-1][:-14], np.asarray(Image.open(painted[0]))[:-14])
    path = run_explore("search", f"explore.search={folder}", "explore.fps=4", out=tmp_path)
    assert path == tmp_path / "search.mp4" and iio.imread(path, plugin="FFMPEG", index=None).shape == (12, 32, 32, 3)


# --------------------------------------------------------------------------------------------- mixing


def test_mixing_grid_cells_are_the_hand_mixed_w_plus(generator):
    rows, cols = [7, 8], [9, 10, 11]
    grid, layout = mixing_grid(generator, rows, cols, "middle", {"middle": [16, 32]}, batch_size=3)
    row_ws = {s: seed_w(generator, s) for s in rows}
    col_ws = {s: seed_w(generator, s) for s in cols}
    for c, s in enumerate(cols):
        close(cell(grid, layout, 0, c + 1), synth(generator, col_ws[s])[0])
    for r, rs in enumerate(rows):
        close(cell(grid, layout, r + 1, 0), synth(generator, row_ws[rs])[0])
        for c, cs in enumerate(cols):
            hand = torch.cat([row_ws[rs][:, :2], col_ws[cs][:, 2:6]], dim=1)  # 16-32 px: W+ 2..5 of 6
            close(cell(grid, layout, r + 1, c + 1), synth(generator, hand)[0])
    assert (cell(grid, layout, 0, 0) == 255).all()  # the corner is empty
    assert grid.height == layout.top + 3 * 32 and grid.width >= layout.left + 4 * 32


def test_named_ranges_are_nvlabs_layers_and_a_swagan_block_makes_twice_its_px():
    ranges = {"coarse": [4, 8], "middle": [16, 32], "fine": [64, 1024]}
    nvlabs = build_generator("stylegan2", size=1024, style_dim=8, n_mlp=1, channel_multiplier=1, channel_max=8)
    # NVlabs' figure: 18 W+ vectors, coarse 0-3 (4-8 px), middle 4-7 (16-32 px), fine 8-17 (64-1024 px)
    assert [layer_span(nvlabs, name, ranges) for name in ranges] == [(0, 3), (4, 7), (8, 17)]
    swagan = build_generator("swagan", size=512, style_dim=8, n_mlp=1, channel_multiplier=1, channel_max=8)
    assert swagan.n_latent == 14  # MAGnet's: blocks of 4..256 px make the wavelets of 8..512 px images
    assert [layer_span(swagan, name, ranges) for name in ranges] == [(0, 1), (2, 5), (6, 13)]


def test_mixing_with_a_painting_takes_its_w_plus_and_a_coarse_range(painted, generator, tmp_path):
    path = run_explore("mixing", f"explore.rows=[{painted[0]}]", "explore.columns=[5]", out=tmp_path)
    grid = Image.open(path)
    painting = read_png_metadata(painted[0])
    with torch.no_grad():
        row = generator.mapping(torch.tensor(painting["latent"])[None])
    hand = torch.cat([seed_w(generator, 5)[:, :2], row[:, 2:]], dim=1)  # the column's coarse layers (8 px): W+ 0..1
    _, layout = mixing_grid(generator, [str(painted[0])], [5], "coarse", {"coarse": [4, 8]})
    close(cell(grid, layout, 1, 1), synth(generator, hand)[0])


# ----------------------------------------------------------------------------------------- truncation


def test_truncation_strip_cells_are_the_mapping_truncated_at_each_psi(generator):
    psis = [0.0, 0.5, 1.0, 1.5]
    strip, layout = truncation_strip(generator, 12, psis, batch_size=3)
    for i, psi in enumerate(psis):
        close(cell(strip, layout, 0, i), synth(generator, seed_w(generator, 12, psi))[0])
    other, _ = truncation_strip(generator, 13, [0.0])
    close(cell(other, layout, 0, 0), cell(strip, layout, 0, 0))  # psi 0: the average w, whatever the seed


def test_truncation_of_a_painting_at_its_own_psi_is_the_painting(generator, ckpts, tmp_path):
    z = torch.randn(16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        w = generator.mapping(z[None], truncation_psi=0.5)[0, 0]
    png = save_png(tmp_path / "p" / "painting.png", torch.zeros(3, 32, 32),
                   {"checkpoint": str(ckpts / "a.pt"), "space": "w", "truncation_psi": 0.5, "latent": w.tolist()})
    strip, layout = truncation_strip(generator, str(png), [0.5, 1.0])
    close(cell(strip, layout, 0, 0), synth(generator, w[None])[0])
    with torch.no_grad():
        untruncated = generator.mapping(z[None])
    close(cell(strip, layout, 0, 1), synth(generator, untruncated)[0])


# ------------------------------------------------------------------------------------------------ SeFa


def test_sefa_directions_are_orthonormal_eigenvectors_of_the_modulation_weights(generator, ckpts):
    eigenvalues, directions = closed_form_directions(generator)
    state = torch.load(ckpts / "a.pt", weights_only=True)["g_ema"]
    names = [k for k in state if re.fullmatch(r"(conv1|convs\.\d+)\.conv\.modulation\.weight", k)]
    assert len(names) == 1 + 2 * 2  # conv1, two convs per block (8, 16 px: a 32 px SWAGAN); to_rgbs left out
    a = np.concatenate([state[k].numpy().astype(np.float64) for k in names])
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1]
    np.testing.assert_allclose(eigenvalues.numpy(), values[order], rtol=1e-4)
    np.testing.assert_allclose(eigenvalues.numpy(), np.linalg.svd(a, compute_uv=False) ** 2, rtol=1e-4)
    d = directions.double().numpy()
    np.testing.assert_allclose(d @ d.T, np.eye(16), atol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(d * vectors[:, order].T, axis=1)), 1, atol=1e-5)  # up to sign


def test_sefa_directions_are_cached_per_checkpoint_file(generator, ckpts, tmp_path, monkeypatch):
    first = cached_directions(generator, ckpts / "a.pt", tmp_path / "d")
    [cached] = list((tmp_path / "d").iterdir())
    assert checkpoint_sha256(ckpts / "a.pt")[:24] in cached.name
    with monkeypatch.context() as patched:
        patched.setattr("magnet.explore.sefa.closed_form_directions", lambda g: pytest.fail("computed again"))
        again = cached_directions(generator, ckpts / "a.pt", tmp_path / "d")
    torch.testing.assert_close(again, first)
    cached.write_bytes(b"cut short")  # a broken cache file is computed again
    torch.testing.assert_close(cached_directions(generator, ckpts / "a.pt", tmp_path / "d"), first)
    assert torch.load(cached, weights_only=True)["directions"].shape == (16, 16)


def test_sefa_grid_rows_move_along_each_direction(generator):
    eigenvalues, directions = closed_form_directions(generator)
    ws = seed_w(generator, 3)[0]
    grid, layout = sefa_grid(generator, ws, directions, eigenvalues, top_k=2, amount=2.0, steps=3)
    for k in range(2):
        for j, amount in enumerate([-2.0, 0.0, 2.0]):
            close(cell(grid, layout, k, j), synth(generator, (ws + amount * directions[k])[None])[0])


def test_an_edit_is_saved_with_its_recipe_and_generate_renders_it_again(painted, ckpts, generator, tmp_path, cache):
    path = run_explore("edit", f"explore.painting={painted[0]}", "explore.direction=1", "explore.amount=-2.5",
                       "explore.layers=coarse", f"explore.cache_dir={tmp_path / 'edit_cache'}", out=tmp_path / "edit")
    meta = read_png_metadata(path)
    [edit] = meta["edits"]
    assert edit["index"] == 1 and edit["amount"] == -2.5 and edit["layers"] == [0, 1] and "score" not in meta
    assert meta["checkpoint_sha256"] == checkpoint_sha256(ckpts / "a.pt")
    _, directions = closed_form_directions(generator)
    with torch.no_grad():
        ws = generator.mapping(torch.tensor(read_png_metadata(painted[0])["latent"])[None])
    ws[:, :2] += -2.5 * directions[1]  # coarse (8 px of a SWAGAN): W+ 0..1
    with torch.no_grad():
        expected = auto_levels(generator.synthesis(ws, noise_mode="const")[0])
    edited = np.asarray(Image.open(path))
    np.testing.assert_array_equal(edited, expected)
    assert np.abs(edited.astype(int) - np.asarray(Image.open(painted[0]))).mean() > 5
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        again = generate(compose("generate", overrides=[f"from_png={path}", f"output_dir={tmp_path / 'again'}"]))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(again)), edited)
    twice = run_explore("edit", f"explore.painting={path}", "explore.direction=0", "explore.amount=1",
                        out=tmp_path / "twice")
    assert list((cache / "sefa").glob("sefa-*.pt"))  # in $MAGNET_CACHE/sefa
    assert [e["index"] for e in read_png_metadata(twice)["edits"]] == [1, 0]


# ------------------------------------------------------------------------------------------ entry point


def test_cli_prints_the_path_of_the_figure(painted, tmp_path):
    proc = subprocess.run([sys.executable, "explore.py", "explore=truncation", f"explore.source={painted[1]}",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "truncation.png")
    with Image.open(tmp_path / "truncation.png") as strip:
        assert strip.width >= 7 * 32


# -------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, painted, ckpts):
    folder = tmp_path_factory.mktemp("bad")
    Image.new("RGB", (32, 32), "red").save(folder / "plain.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    meta = read_png_metadata(painted[0])
    image = torch.zeros(3, 32, 32)
    save_png(folder / "moved" / "painting.png", image, {**meta, "checkpoint": str(folder / "gone.pt"),
                                                        "checkpoint_sha256": None})
    save_png(folder / "wide" / "painting.png", image,
             {**meta, "checkpoint": str(ckpts / "wide.pt"), "checkpoint_sha256": None,
              "latent": torch.randn(32).tolist()})
    save_png(folder / "wplus" / "painting.png", image,
             {**meta, "space": "w+", "latent": torch.randn(8, 16).tolist()})
    return folder


@pytest.mark.parametrize("case", [
    "no_metadata", "unreadable", "missing", "other_ckpt", "ckpt_gone", "other_shape", "mixed_ckpts", "seed_negative",
    "seed_huge", "layers_beyond", "range_absent", "top_k", "direction", "one_latent", "z_walk_of_w_plus",
    "odd_size", "search_missing", "required", "psi_range", "steps",
])
def test_bad_input_is_one_clear_line(case, bad_files, painted, ckpts, tmp_path):
    a, b = f"ckpt_path={ckpts / 'a.pt'}", f"ckpt_path={ckpts / 'b.pt'}"
    cases = {
        "no_metadata": (["walk", f"explore.paintings=[{bad_files / 'plain.png'},{painted[0]}]"],
                        UserError, "plain.png has no 'magnet' metadata"),
        "unreadable": (["mixing", f"explore.rows=[{bad_files / 'broken.png'}]"], UserError,
                       "broken.png cannot be read as an image"),
        "missing": (["truncation", f"explore.source={tmp_path / 'nope.png'}"], UserError,
                    f"explore.source='{tmp_path / 'nope.png'}': must be an existing painting.png"),
        "other_ckpt": (["sefa", f"explore.source={painted[0]}", b], UserError,
                       f"{painted[0]} was painted with another checkpoint ({ckpts / 'a.pt'}, sha256"),
        "ckpt_gone": (["truncation", f"explore.source={bad_files / 'moved' / 'painting.png'}"], UserError,
                      "gone.pt, which is not on this machine; give ckpt_path="),
        "other_shape": (["walk", f"explore.paintings=[{bad_files / 'wide' / 'painting.png'}]", "explore.seeds=[1]",
                         a], UserError, "but this generator takes (16,): it was painted with another checkpoint"),
        "mixed_ckpts": (["walk", f"explore.paintings=[{painted[0]},{bad_files / 'wide' / 'painting.png'}]"],
                        UserError, "were painted with different checkpoints"),
        "seed_negative": (["walk", "explore.seeds=[1,-1]"], ConfigError,
                          "explore.seeds[1]=-1: must be an integer >= 0 and <= 4294967295"),
        "seed_huge": (["mixing", f"explore.columns=[{2**32}]"], ConfigError,
                      f"explore.columns[0]={2**32}: must be an integer >= 0"),
        "layers_beyond": (["mixing", "explore.layers=[2,9]", a], ConfigError,
                          "explore.layers=[2, 9]: must be W+ indices within 0..5"),
        "range_absent": (["mixing", "explore.layers=fine", a], ConfigError,
                         "explore.layers='fine': must be a range this 32 px generator has"),
        "top_k": (["sefa", "explore.top_k=17", a], ConfigError, "explore.top_k=17: must be an integer >= 1 and <= 16"),
        "direction": (["edit", f"explore.painting={painted[0]}", "explore.direction=16",
                       f"explore.cache_dir={tmp_path}"], ConfigError,
                      "explore.direction=16: must be an integer >= 0 and <= 15"),
        "one_latent": (["walk", "explore.seeds=[4]"], UserError, "a walk needs at least 2 latents"),
        "z_walk_of_w_plus": (["walk", f"explore.paintings=[{bad_files / 'wplus' / 'painting.png'}]",
                              "explore.seeds=[1]", "explore.space=z"], UserError, "walk in W+ instead"),
        "odd_size": (["walk", "explore.seeds=[1,2]", "explore.size=33"], ConfigError,
                     "explore.size=33: must be null or an even integer >= 16"),
        "search_missing": (["search", f"explore.search={tmp_path}"], UserError, "search.json does not exist"),
        "required": (["edit"], UserError, "explore.painting not set: give explore.painting=..."),
        "psi_range": (["truncation", "explore.psis=[0,5]"], ConfigError,
                      "explore.psis[1]=5: must be a number >= -2 and <= 3"),
        "steps": (["sefa", "explore.steps=1"], ConfigError, "explore.steps=1: must be an integer >= 2"),
    }
    (tool, *overrides), error, message = cases[case]
    with pytest.raises(error) as caught:
        run_explore(tool, *overrides, out=tmp_path / "out")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_bad_input_on_the_command_line_is_one_error_line(bad_files, tmp_path):
    proc = subprocess.run([sys.executable, "explore.py", "explore=walk",
                           f"explore.paintings=[{bad_files / 'plain.png'},{bad_files / 'plain.png'}]",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1 and "has no 'magnet' metadata" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_context_writes_the_checkpoint_identity_into_recipes(ckpts, generator, tmp_path):
    context = ExploreContext(generator, tmp_path, str(ckpts / "a.pt"))
    assert context.recipe() == {"checkpoint": str((ckpts / "a.pt").resolve()),
                                "checkpoint_sha256": checkpoint_sha256(ckpts / "a.pt")}


def test_from_png_takes_a_copy_of_the_checkpoint_and_refuses_another_one(painted, ckpts, tmp_path):
    copy = tmp_path / "copy_of_a.pt"
    copy.write_bytes((ckpts / "a.pt").read_bytes())

    def from_png(ckpt):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("generate", overrides=[f"from_png={painted[1]}", f"ckpt_path={ckpt}",
                                                 f"output_dir={tmp_path / 'again'}"])
        return generate(cfg)[0]

    np.testing.assert_array_equal(np.asarray(Image.open(from_png(copy))), np.asarray(Image.open(painted[1])))
    with pytest.raises(UserError, match=r"painted with another checkpoint .* give ckpt_path= the checkpoint it was"):
        from_png(ckpts / "b.pt")
