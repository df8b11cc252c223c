"""A search that starts from a painting.png: the population around its latent, conversions, bad input."""

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from generate import generate
from magnet import build_generator
from magnet.errors import MissingFileError, UserError
from magnet.models.resolve import checkpoint_reference
from magnet.search import CMAESSearch, GeneticSearch, LatentSpace, RandomSearch, read_png_metadata, run_search
from magnet.search.outputs import save_png
from magnet.search.start import read_start, sample_around, start_latent

ROOT = Path(__file__).resolve().parents[1]
TINY = ["clip.model_name=ViT-S-32-alt", "clip.pretrained=null", "search.strategy.num_initial_samples=6",
        "search.strategy.num_parents=2", "search.strategy.generations=1", "search.batch_size=8",
        "search.thumb_size=16", "output.contact_sheets=false"]


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return build_generator("swagan", size=32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16).eval()


@pytest.fixture(scope="module")
def ckpt(generator, tmp_path_factory):
    path = tmp_path_factory.mktemp("start") / "tiny.pt"
    torch.save({"g_ema": generator.state_dict()}, path)
    return path


def config(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=[*TINY, *overrides])


def scores(images):
    return images.mean((1, 2, 3))  # a cheap objective: brightness


@pytest.mark.parametrize("space_name", ["z", "w", "w+"])
def test_the_population_is_drawn_around_the_latent_reproducibly(generator, space_name):
    space = LatentSpace(generator, space_name)
    centre = space.sample(1, torch.Generator().manual_seed(99))[0]
    population = GeneticSearch(num_initial_samples=40).start(space, torch.Generator().manual_seed(1), centre,
                                                             0.3).ask()
    random = space.sample(40, torch.Generator().manual_seed(1))
    assert population.shape == random.shape and torch.equal(population[0], centre)

    def mean_distance(latents):
        return float((latents - centre).flatten(1).norm(dim=1).mean())

    assert mean_distance(population[1:]) < 0.5 * mean_distance(random)
    if space_name == "z":  # still on the sphere of a Gaussian sample
        torch.testing.assert_close(population.norm(dim=1), torch.full((40,), 4.0))
    again = GeneticSearch(num_initial_samples=40).start(space, torch.Generator().manual_seed(1), centre, 0.3).ask()
    other = GeneticSearch(num_initial_samples=40).start(space, torch.Generator().manual_seed(2), centre, 0.3).ask()
    assert torch.equal(again, population) and not torch.equal(other, population)
    wider = sample_around(space, centre, 40, 0.6, torch.Generator().manual_seed(1))
    assert mean_distance(population[1:]) < mean_distance(wider[1:])


@pytest.mark.parametrize("space_name", ["w", "w+"])
def test_steps_keep_the_spaces_unit_however_narrow_the_start(generator, space_name):
    """init_spread 0: the population is copies of the painting, and the GA's mutation is still 0.25 of the
    spread of random latents (not of that population's, which is 0)."""
    space = LatentSpace(generator, space_name)
    centre = space.sample(1, torch.Generator().manual_seed(7))[0]
    ga = GeneticSearch(num_initial_samples=8, num_parents=2, generations=1, recombination_amount=0.0)
    ga.start(space, torch.Generator().manual_seed(0), centre, 0.0)
    first = ga.ask()
    assert all(torch.equal(latent, centre) for latent in first)
    ga.tell(torch.arange(8.0))
    steps = (ga.ask() - centre).reshape(-1, centre.shape[-1])
    unit = space.noise_scale(space.sample(500, torch.Generator().manual_seed(1)))
    ratio = (steps / unit).std(0)  # per dimension, over the children (and W+ layers)
    assert 0.15 < float(ratio.mean()) < 0.35
    cma = CMAESSearch(num_initial_samples=8, population=4, generations=1, sigma=0.5)
    cma.start(space, torch.Generator().manual_seed(0), centre, 0.0)
    cma.ask()
    cma.tell(torch.arange(8.0))
    assert float(((cma.ask() - centre).reshape(-1, centre.shape[-1]) / unit).std(0).mean()) > 0.25


@pytest.mark.parametrize("make", [lambda: GeneticSearch(num_initial_samples=6, num_parents=2, generations=2),
                                  lambda: CMAESSearch(num_initial_samples=6, population=4, generations=2),
                                  lambda: RandomSearch(num_initial_samples=6)])
def test_without_a_start_the_search_is_todays(generator, make):
    """No `around`: the first population is the seeded random sample, and every later step is the one the
    two-argument start (the only one before init_from) gives."""
    space = LatentSpace(generator, "w")
    result = run_search(make(), space, scores, seed=3, batch_size=8, thumb_size=8)
    assert torch.equal(result.generations[0].latents, space.sample(6, torch.Generator().manual_seed(3)))
    strategy = make().start(space, torch.Generator().manual_seed(3))
    while not strategy.done:
        latents = strategy.ask()
        strategy.tell(scores(space.render(latents)).detach())
    for ours, theirs in zip(result.generations, strategy.history, strict=True):
        assert torch.equal(ours.latents, theirs.latents)


def test_cmaes_starts_at_the_painting_when_it_is_the_best(generator):
    space = LatentSpace(generator, "w")
    centre = space.sample(1, torch.Generator().manual_seed(5))[0]
    target = space.render(centre[None]).detach()

    def closeness(images):
        return -(images - target).square().mean((1, 2, 3))

    strategy = CMAESSearch(num_initial_samples=6, population=4, generations=0)
    result = run_search(strategy, space, closeness, seed=0, around=centre, spread=0.5)
    assert torch.equal(result.generations[0].latents[0], centre)
    assert int(result.generations[0].scores.argmax()) == 0 and torch.equal(strategy.mean, centre)


def painting(tmp_path, generator, ckpt, space_name, latent, name="painting.png", **extra):
    space = LatentSpace(generator, space_name)
    metadata = {"checkpoint": checkpoint_reference(ckpt), "space": space_name, "truncation_psi": 0.7,
                "latent": latent.tolist(), **extra}
    return save_png(tmp_path / name, space.render_one(latent), metadata)


def test_a_painting_converts_to_the_same_image_in_a_wider_space(generator, ckpt, tmp_path):
    z = LatentSpace(generator, "z").sample(1, torch.Generator().manual_seed(4))[0]
    meta = read_png_metadata(painting(tmp_path, generator, ckpt, "z", z))
    image = LatentSpace(generator, "z", 0.7).render_one(z)  # as the painting was made: psi 0.7
    for name in ("w", "w+"):
        space = LatentSpace(generator, name)
        torch.testing.assert_close(space.render_one(start_latent(meta, space)), image)
    w = LatentSpace(generator, "w").sample(1, torch.Generator().manual_seed(4))[0]
    meta = read_png_metadata(painting(tmp_path, generator, ckpt, "w", w, "w.png"))
    plus = start_latent(meta, LatentSpace(generator, "w+"))
    assert plus.shape == (generator.n_latent, 16)
    torch.testing.assert_close(LatentSpace(generator, "w+").render_one(plus), LatentSpace(generator, "w").render_one(w))
    assert torch.equal(start_latent({**meta, "space": "w+", "latent": plus.tolist()}, LatentSpace(generator, "w")), w)


def test_bad_starts_are_one_line(generator, ckpt, tmp_path):
    wplus = LatentSpace(generator, "w+").sample(1, torch.Generator().manual_seed(4))[0]
    wplus = wplus + 0.1 * torch.randn(wplus.shape, generator=torch.Generator().manual_seed(0))  # rows differ
    meta = read_png_metadata(painting(tmp_path, generator, ckpt, "w+", wplus))
    with pytest.raises(UserError, match="search.init_from is a painting in w\\+, which a search in z cannot start "
                                        "from: give search.space=w\\+"):
        start_latent(meta, LatentSpace(generator, "z"))
    with pytest.raises(UserError, match="search in w cannot start from: give search.space=w\\+"):
        start_latent(meta, LatentSpace(generator, "w"))
    with pytest.raises(UserError, match=r"has a w\+ latent of shape \(6, 8\), this generator's are \(6, 16\): it "
                                        "comes from another model"):
        start_latent({**meta, "latent": wplus[:, :8].tolist()}, LatentSpace(generator, "w+"))
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(UserError, match="plain.png' has no magnet metadata: give a painting.png written by "
                                        "generate.py or explore.py, or project the image first"):
        read_start(plain, "w+")
    no_latent = save_png(tmp_path / "no_latent.png", torch.zeros(3, 8, 8), {"prompt": "x"})
    with pytest.raises(UserError, match="no_latent.png' has magnet metadata without a latent"):
        read_start(no_latent, "w+")
    signed = painting(tmp_path, generator, ckpt, "w+", wplus, "signed.png", checkpoint_sha256="a" * 64)
    with pytest.raises(UserError, match="signed.png' was painted with another checkpoint .*, sha256 aaaaaaaaaaaa. "
                                        "than /else.pt .sha256 bbbbbbbbbbbb.; give ckpt_path= the checkpoint"):
        read_start(signed, "w+", {"checkpoint": "/else.pt", "checkpoint_sha256": "b" * 64})
    assert read_start(signed, "w+", {"checkpoint": "/copy.pt", "checkpoint_sha256": "a" * 64})["latent"]
    with pytest.raises(UserError, match="search.init_from is a painting in w\\+, which a search in z cannot"):
        read_start(tmp_path / "painting.png", "z")  # before any network is loaded
    edited = painting(tmp_path, generator, ckpt, "w", wplus[0], "edited.png", edits=[
        {"kind": "sefa", "index": 0, "amount": 2.0, "layers": [1, 2], "direction": [1.0] * 16}])
    with pytest.raises(UserError, match="a painting in w\\+, which a search in w cannot start from"):
        read_start(edited, "w")  # edits are W+ offsets
    ws = start_latent(read_png_metadata(edited), LatentSpace(generator, "w+"))
    expected = wplus[0][None].repeat(generator.n_latent, 1)
    expected[1:3] += 2.0
    torch.testing.assert_close(ws, expected)


def test_generate_varies_a_painting_with_its_own_checkpoint(generator, ckpt, tmp_path):
    first = generate(config(f"ckpt_path={ckpt}", "prompt=a red circle", "search.space=w",
                            f"output_dir={tmp_path / 'first'}"))[0]
    varied = generate(config(f"search.init_from={first}", "search.init_spread=0.2", "search.space=w+",
                             "prompt=orange triangles", f"output_dir={tmp_path / 'varied'}"))[0]  # its checkpoint
    meta, start = read_png_metadata(varied), read_png_metadata(first)
    assert meta["checkpoint"] == start["checkpoint"] and meta["settings"]["search"]["init_from"] == str(first)
    record = json.loads((varied.parent / "search.json").read_text())
    initial = torch.tensor(record["generations"][0]["latents"])
    assert torch.equal(initial[0], torch.tensor(start["latent"])[None].expand(generator.n_latent, -1))
    copy, other = tmp_path / "copy.pt", tmp_path / "other.pt"
    copy.write_bytes(ckpt.read_bytes())  # the same model under another name: accepted (its SHA-256 is the same)
    again = generate(config(f"ckpt_path={copy}", f"search.init_from={first}", "search.space=w", "prompt=x",
                            f"output_dir={tmp_path / 'copy'}"))[0]
    assert read_png_metadata(again)["checkpoint"] == str(copy.resolve())
    torch.manual_seed(1)
    torch.save({"g_ema": build_generator("swagan", size=32, style_dim=16, n_mlp=2, channel_multiplier=1,
                                         channel_max=16).state_dict()}, other)
    with pytest.raises(UserError, match="was painted with another checkpoint .* give ckpt_path= the checkpoint"):
        generate(config(f"ckpt_path={other}", f"search.init_from={first}", "search.space=w", "prompt=x",
                        f"output_dir={tmp_path}"))
    with pytest.raises(UserError, match="a painting in w, which a search in z cannot start from: give search.space=w"):
        generate(config(f"search.init_from={first}", "prompt=x", f"output_dir={tmp_path}"))  # z: the default
    with pytest.raises(MissingFileError, match="search.init_from='nowhere.png': must be an existing painting.png"):
        generate(config(f"ckpt_path={ckpt}", "search.init_from=nowhere.png", "prompt=x", f"output_dir={tmp_path}"))
    with pytest.raises(UserError, match="search.init_spread=-1: must be a number >= 0"):
        generate(config(f"ckpt_path={ckpt}", f"search.init_from={first}", "search.init_spread=-1", "prompt=x",
                        f"output_dir={tmp_path}"))
