"""The studio without a browser: a StudioSession does what the page does, and refuses bad input in words."""

import os
import shutil
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image
from studio_setup import compose_studio, studio_overrides, tiny_checkpoint

from generate import regenerate
from magnet.errors import UserError
from magnet.explore import closed_form_directions, mix, truncate
from magnet.explore.layers import layer_span
from magnet.explore.projection import psnr, read_target, w_statistics
from magnet.search import LatentSpace, Screen, read_png_metadata
from magnet.search.postprocess import auto_levels
from magnet.search.start import reference_sample
from magnet.studio.models import LAST_RUN, SharedModels, model_choices, page_reference
from magnet.studio.session import StudioSession, inside
from studio import build, launch_options, studio_settings

PROMPT = "a red circle | text:-0.5"


class MakesAFolder:
    """Unpickling this would create `path`: a checkpoint that runs code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    cfg = compose_studio(studio_overrides(tiny_checkpoint(folder), folder / "out"))
    return cfg, SharedModels("cpu"), studio_settings(cfg)


@pytest.fixture
def session(setup, tmp_path):
    cfg, models, settings = setup
    return StudioSession(models, tmp_path / "session", settings)


@pytest.fixture
def searched(session):
    """A session after the initial population of a search (8 paintings)."""
    list(session.search(PROMPT, seed=3, generations=0))
    return session


def test_a_search_yields_each_generation_as_it_is_scored_and_stopping_keeps_them(session):
    steps = session.search(PROMPT, seed=3, generations=5)
    first = next(steps)
    assert len(session.history) == 1 and first.generation.num_parents == 0 and len(first.generation.scores) == 8
    steps.close()  # the person pressed stop
    assert len(session.history) == 1 and session.current == 0
    second = list(session.search(PROMPT, seed=3, generations=1))
    assert len(second) == 2 and len(session.history) == 3 and second[1].generation.num_parents == 2


def test_picked_parents_breed_the_next_generation_then_undo_and_history(searched):
    before = searched.entry.generation
    assert searched.pick(4) == [4] and searched.pick(1) == [4, 1] and searched.pick(4) == [1]
    searched.pick(5)
    new = searched.breed(PROMPT, mutation_amount=0.1, clip_weight=0.0).generation
    assert new.num_parents == 2 and torch.equal(new.latents[:2], before.latents[[1, 5]])
    assert torch.equal(new.thumbnails[:2], before.thumbnails[[1, 5]]) and len(new.scores) == 2 + 6
    assert searched.current == 1 and searched.chosen == []
    searched.go_to(0)
    searched.breed(PROMPT, clip_weight=1.0)  # CLIP alone needs no picks
    assert searched.history[-1].generation.num_parents == 4 and searched.current == 2
    searched.undo()
    assert len(searched.history) == 2 and searched.current == 1


def test_a_painting_re_renders_the_same_pixels_from_its_metadata(setup, searched, tmp_path):
    cfg = setup[0]
    for kwargs in ({"truncation_psi": 0.5}, {"refine_steps": 1}):  # as found: the browser test
        path = searched.painting(2, name="../../outside", **kwargs)
        assert path.parent == (searched.folder / "paintings").resolve() and path.name == "outside.png"
        again = regenerate(compose_studio_generate(cfg, path, tmp_path))
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(again)))
        meta = read_png_metadata(path)
        assert meta["prompt"] == PROMPT and meta["truncation_psi"] == kwargs.get("truncation_psi", 1)
        assert meta["space"] == ("w+" if kwargs.get("refine_steps") else "w")  # truncated: its w


def test_a_bf16_screened_search_shows_the_best_previews_and_saves_float32_paintings_with_their_score(setup,
                                                                                                     tmp_path):
    cfg, models, settings = setup
    screen = Screen(preview_size=16, keep=3)
    session = StudioSession(models, tmp_path / "session", replace(settings, precision="bf16", screen=screen))
    assert "precision bf16" in session.describe()
    list(session.search(PROMPT, seed=3, generations=0))
    assert len(session.entry.generation.scores) == 3  # of the 8 initial paintings
    path = session.painting(2)
    again = regenerate(compose_studio_generate(cfg, path, tmp_path))
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(again)))
    meta = read_png_metadata(path)
    space = LatentSpace(models.generator(session.model), meta["space"], meta["truncation_psi"])
    with torch.no_grad():
        exact = float(session.objective(PROMPT)(space.render_one(meta["latent"])[None]))
    assert meta["score"] == pytest.approx(exact, abs=1e-5)
    assert float(session.entry.generation.scores[2]) != pytest.approx(exact, abs=1e-5)  # the bf16 one


def compose_studio_generate(cfg, png, out):
    from hydra import compose, initialize_config_dir
    from studio_setup import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=[f"from_png={png}", f"output_dir={out}"])


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", ".", "", "a/../../b", "..\\..\\x",
                                  "~/x", "nul\x00byte", "x" * 500, "CON", "é/ü"])
def test_names_from_a_person_never_leave_the_session_folder(tmp_path, name):
    path = inside(tmp_path, name, ".png")
    assert path.parent == tmp_path.resolve() and path.name.endswith(".png") and len(path.name) < 100


def test_saved_sessions_open_again_and_files_stay_inside(searched, setup, tmp_path):
    searched.painting(3, truncation_psi=0.5)
    searched.keep()
    searched.pick(0)
    searched.breed(PROMPT)
    saved = searched.save("../../my session")
    assert saved == (searched.folder / "saved" / "my-session.pt").resolve()
    sheet = searched.contact_sheet()
    assert sheet.parent == (searched.folder / "sheets").resolve() and Image.open(sheet).size[0] > 32
    other = StudioSession(setup[1], tmp_path / "other", setup[2])
    other.open(saved)
    assert len(other.history) == 2 and other.current == 1
    for a, b in zip(searched.history, other.history):
        assert torch.equal(a.generation.latents, b.generation.latents) and a.label == b.label
    assert other.favourites == searched.favourites and len(other.favourites) == 1
    assert other.shown == searched.shown


def test_a_checkpoint_or_session_that_runs_code_is_refused_and_the_session_keeps_its_state(searched, tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": MakesAFolder(marker)}, evil)
    model, history = searched.model, list(searched.history)
    with pytest.raises(UserError, match=r"evil\.pt holds code \(posix\.mkdir\)"):
        searched.set_model(str(evil))
    with pytest.raises(UserError, match="not a studio session file"):
        searched.open(evil)
    assert not marker.exists() and searched.model == model and searched.history == history
    remote = torch.load(searched.save("remote"), weights_only=True)
    remote["history"][0]["model"] = "https://example.com/evil.pt"  # a session file naming a URL: no download
    torch.save(remote, tmp_path / "remote.pt")
    with pytest.raises(UserError, match="local files only"):
        searched.open(tmp_path / "remote.pt")
    assert searched.history == history


def test_bad_requests_are_refused_in_words_and_change_nothing(searched, tmp_path):
    history, current = list(searched.history), searched.current
    with pytest.raises(UserError, match="empty"):
        next(searched.search("  ", seed=1))
    with pytest.raises(UserError, match="no parents picked"):
        searched.breed(PROMPT, clip_weight=0.0)
    with pytest.raises(UserError, match="does not exist"):
        searched.set_model(str(tmp_path / "missing.pt"))
    with pytest.raises(UserError, match="unknown strategy"):
        next(searched.search(PROMPT, strategy="../genetic"))
    for index in (99, -1):
        with pytest.raises(UserError, match="not in this generation"):
            searched.pick(index)
    searched.pick(0), searched.pick(1), searched.pick(2), searched.pick(3)
    with pytest.raises(UserError, match="4 parents picked already"):
        searched.pick(4)
    assert searched.history == history and searched.current == current and searched.chosen == [0, 1, 2, 3]


def test_a_fresh_session_says_what_to_do_first(session):
    for action in (lambda: session.breed(PROMPT, clip_weight=1.0), lambda: session.painting(0), session.undo):
        with pytest.raises(UserError, match="no generation yet|nothing to undo"):
            action()


def test_uploaded_images_are_size_limited_and_decoded_under_the_pixel_limit(session, huge_png, museum_paintings,
                                                                             tmp_path):
    with pytest.raises(UserError, match="cannot be read as an image.*exceeds"):
        session.set_image_prompt(huge_png)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="cannot be read as an image"):
        session.set_image_prompt(tmp_path / "junk.png")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (session.settings.max_upload_bytes + 1))
    with pytest.raises(UserError, match="bytes"):
        session.set_image_prompt(big)
    assert session.image_prompt is None
    kept = session.set_image_prompt(museum_paintings[0])
    assert os.path.dirname(kept) == str(session.folder)
    with_image = session.objective("a red circle", image_weight=0.5)
    assert [p.weight for p in with_image.prompts] == [1.0, 0.5] and with_image.prompts[1].is_image


def test_an_image_prompt_file_above_the_pixel_limit_is_refused_from_its_header(random_clip, huge_png):
    from magnet.search import ClipObjective, parse_prompt

    with pytest.raises(UserError, match="image prompt .* cannot be read"):
        ClipObjective(random_clip, parse_prompt("a cat", image_prompts=[str(huge_png)]))


def test_the_model_picker_offers_the_last_training_run_and_refuses_urls(tmp_path, setup):
    runs = tmp_path / "runs"
    assert LAST_RUN not in model_choices(runs)
    (runs / "2026-12-01_10-00-00" / "checkpoints").mkdir(parents=True)
    last = runs / "2026-12-01_10-00-00" / "checkpoints" / "last.ckpt"
    shutil.copy(setup[0].ckpt_path, last)
    assert model_choices(runs)[-1] == LAST_RUN and "magnet" in model_choices(runs)
    assert page_reference(LAST_RUN, runs) == str(last)
    for url in ("https://example.com/x.pt", "hf://owner/repo/x.pt"):
        with pytest.raises(UserError, match="local files only"):
            page_reference(url, runs)
    with pytest.raises(UserError, match="no model given"):
        page_reference("  ", runs)


def test_the_server_binds_to_this_machine_unless_told_and_bad_settings_are_named(setup, tmp_path):
    cfg = setup[0]
    launch = launch_options(cfg)
    assert launch["server_name"] == "127.0.0.1" and launch["share"] is False and launch["server_port"] == 7860
    for override, key in (("port=-1", "port"), ("breeding.clip_weight=2.0", "breeding.clip_weight"),
                          ("strategies.genetic.num_parents=0", "strategies.genetic.num_parents"),
                          ("search.space=q", r"search\.space=.q"), ("search.batch_size=0", r"search\.batch_size=0"),
                          ("search.precision=fp8", r"search\.precision=.fp8"),
                          ("clip.model_name=nope", "clip.model_name"),
                          ("explore.directions=0", "explore.directions"), ("explore.fps=0", "explore.fps"),
                          ("refine.num_cutouts=0", "refine.num_cutouts"), ("project.steps=0", "project.steps"),
                          ("project.perceptual=vgg", "project.perceptual"), ("vary.spread=-1", "vary.spread")):
        bad = compose_studio([*studio_overrides(cfg.ckpt_path, tmp_path), override])
        with pytest.raises(UserError, match=key):
            build(bad)


# ---------------------------------------------------------------------- the chosen painting's panel
def synthesized(generator, ws) -> np.ndarray:
    """painting.png's pixels for W+ (n_latent, D), computed by hand: the synthesis with stored noise, auto-levelled."""
    with torch.no_grad():
        return auto_levels(generator.synthesis(ws[None], noise_mode="const")[0])


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def first_ws(session, index) -> torch.Tensor:
    """The untruncated W+ of painting `index` of the session's current generation."""
    entry = session.entry
    latent = entry.generation.latents[index][None]
    generator = session.models.generator(entry.model)
    if entry.space == "z":
        with torch.no_grad():
            return generator.mapping(latent)[0]
    return latent[0].expand(generator.n_latent, -1).clone() if entry.space == "w" else latent[0]


@pytest.mark.parametrize("space", ["w", "z"])
def test_truncation_works_in_every_space_as_truncate_and_re_renders(setup, tmp_path, space):
    cfg, models, settings = setup
    session = StudioSession(models, tmp_path / "s", replace(settings, space=space))
    list(session.search(PROMPT, seed=3, generations=0))
    generator = models.generator(session.model)
    ws = first_ws(session, 2)
    path = session.painting(2, truncation_psi=0.4)
    meta = read_png_metadata(path)
    expected = truncate(generator, ws, [0.4], 1.0)[0]
    assert meta["space"] == "w" and meta["truncation_psi"] == 0.4
    torch.testing.assert_close(torch.tensor(meta["latent"]), expected[0], rtol=0, atol=1e-6)
    assert np.array_equal(pixels(path), synthesized(generator, expected))
    untruncated = synthesized(generator, ws)
    assert not np.array_equal(pixels(path), untruncated)
    assert np.array_equal(pixels(session.painting(2, name="as-found")), untruncated)
    again = regenerate(compose_studio_generate(cfg, path, tmp_path / "again"))
    assert np.array_equal(pixels(path), pixels(again))


def test_edit_sliders_go_into_the_recipe_and_the_painting_re_renders_from_its_png(setup, searched, tmp_path):
    cfg, models, _ = setup
    generator = models.generator(searched.model)
    path = searched.painting(2, edits=[2.0, 0.0, -1.5], layers="coarse")
    meta = read_png_metadata(path)
    first, last = layer_span(generator, "coarse", searched.settings.explore.ranges)
    assert (first, last) == (0, 1) and [(e["index"], e["amount"], e["layers"]) for e in meta["edits"]] == \
        [(0, 2.0, [0, 1]), (2, -1.5, [0, 1])]
    _, directions = closed_form_directions(generator)  # computed here, not read from the studio's cache
    ws = first_ws(searched, 2)
    ws[first : last + 1] += 2.0 * directions[0] - 1.5 * directions[2]
    assert np.array_equal(pixels(path), synthesized(generator, ws))
    assert not np.array_equal(pixels(path), pixels(searched.painting(2, name="plain")))
    assert len(list(Path(cfg.explore.cache_dir).glob("sefa-*.pt"))) == 1  # the directions, kept for the next edit
    again = regenerate(compose_studio_generate(cfg, path, tmp_path / "again"))
    assert np.array_equal(pixels(path), pixels(again)) and read_png_metadata(again)["edits"] == meta["edits"]


def test_style_mixing_with_a_favourite_is_mix_then_synthesis(setup, searched, tmp_path):
    cfg, models, _ = setup
    generator = models.generator(searched.model)
    searched.painting(1)
    assert searched.keep() == [f"0: {PROMPT} | z psi 1"]
    searched.painting(4)
    path = searched.mix(0, "middle", name="mixed")
    first, last = layer_span(generator, "middle", searched.settings.explore.ranges)
    expected = mix(first_ws(searched, 4)[None], first_ws(searched, 1)[None], first, last)[0, 0]
    meta = read_png_metadata(path)
    assert meta["space"] == "w+" and meta["mixed"]["layers"] == [first, last] == [2, 5]
    torch.testing.assert_close(torch.tensor(meta["latent"]), expected, rtol=0, atol=0)
    assert np.array_equal(pixels(path), synthesized(generator, expected))
    again = regenerate(compose_studio_generate(cfg, path, tmp_path / "again"))
    assert np.array_equal(pixels(path), pixels(again))


def test_a_walk_between_favourites_has_the_frames_asked(searched):
    for index in (0, 5, 6):
        searched.painting(index)
        searched.keep()
    path = searched.walk(seconds=1.4, fps=5, name="../my walk")
    assert path == (searched.folder / "videos" / "my-walk.mp4").resolve()
    assert iio.imread(path, plugin="FFMPEG", index=None).shape == (7, 32, 32, 3)
    assert iio.imread(searched.walk([2, 0], seconds=0.5, fps=6), plugin="FFMPEG", index=None).shape[0] == 3


def test_bad_panel_requests_are_refused_in_words_and_change_nothing(searched):
    with pytest.raises(UserError, match="no painting shown yet"):
        searched.keep()
    with pytest.raises(UserError, match="no painting shown yet"):
        searched.mix(0)
    searched.painting(0)
    with pytest.raises(UserError, match="no favourite 0"):
        searched.mix(0)
    searched.keep()
    shown = searched.shown
    for action, message in ((lambda: searched.walk(), "at least 2 favourites, 1 given"),
                            (lambda: searched.walk([0, 3]), "no favourite 3"),
                            (lambda: searched.painting(1, layers="fine"), "fine is 64-1024 px"),
                            (lambda: searched.painting(1, edits=[1.0] * 33), "33 edit amounts"),
                            (lambda: searched.walk([0, 0], fps=0), "fps=0")):
        with pytest.raises(UserError, match=message):
            action()
    assert searched.shown == shown and len(searched.favourites) == 1


# ---------------------------------------------------------------------- projection of an uploaded image
@pytest.fixture
def projecting(setup, tmp_path):
    """A session projecting with pixels alone (20 steps are asked), and a painting of its model as the upload."""
    cfg, models, settings = setup
    project = replace(settings.project, perceptual="none", w_avg_samples=2000)
    session = StudioSession(models, tmp_path / "session", replace(settings, project=project))
    generator = models.generator(session.model)
    w = LatentSpace(generator, "w").sample(1, torch.Generator().manual_seed(7))[0]
    upload = tmp_path / "upload.png"
    Image.fromarray(auto_levels(synthesized_w(generator, w))).save(upload)
    return session, generator, upload


def synthesized_w(generator, w):
    with torch.no_grad():
        return generator.synthesis(w[None, None].expand(1, generator.n_latent, -1), noise_mode="const")[0]


def test_a_projected_upload_becomes_a_favourite_that_re_renders_and_can_be_varied(setup, projecting, tmp_path):
    session, generator, upload = projecting
    steps = []
    path = session.project(upload, steps=20, name="../my upload", progress=lambda done, total: steps.append(done))
    assert steps == list(range(1, 21)) and path == (session.folder / "paintings" / "my-upload.png").resolve()
    meta = read_png_metadata(path)
    assert meta["space"] == "w+" and meta["projection"]["settings"]["steps"] == 20
    assert meta["checkpoint_sha256"] and session.favourites == [session.shown] == [meta]
    target = read_target(upload, generator.size)
    start = psnr(synthesized_w(generator, w_statistics(generator, 2000)[0]), target)
    found = psnr(LatentSpace(generator, "w+").render_one(meta["latent"]), target)
    assert found > start + 1, (found, start)
    again = regenerate(compose_studio_generate(setup[0], path, tmp_path / "again"))
    assert np.array_equal(pixels(path), pixels(again))
    session.open(session.save("with a projection"))  # its recipe is plain data: a session file keeps it
    assert session.favourites == [meta]
    # vary it: the first population is the projection (painting 0) and paintings near it, in W+
    first = next(session.vary(PROMPT, seed=1, generations=0, spread=0.2))
    latents, centre = first.generation.latents, torch.tensor(meta["latent"])
    assert first.space == "w+" and torch.equal(latents[0], centre) and len(latents) == 8
    near = (latents[1:] - centre).flatten(1).norm(dim=1)
    space = LatentSpace(generator, "w+")
    far = (reference_sample(space, 7) - centre).flatten(1).norm(dim=1)
    assert 0 < near.max() < far.min()
    assert np.array_equal(pixels(session.painting(0, name="same")), pixels(path))


def test_an_upload_that_cannot_be_projected_is_refused_in_words_and_changes_nothing(projecting, huge_png,
                                                                                  tmp_path):
    session, _, upload = projecting
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (session.settings.max_upload_bytes + 1))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    for bad, message in ((huge_png, "cannot be read as an image.*exceeds"), (tmp_path / "junk.png", "cannot be read"),
                         (big, "bytes; the studio takes images up to")):
        with pytest.raises(UserError, match=message):
            session.project(bad, steps=2)
    with pytest.raises(UserError, match="no painting shown yet"):
        next(session.vary(PROMPT))
    assert session.shown is None and session.favourites == [] and session.history == []
    assert not (session.folder / "paintings").exists()
