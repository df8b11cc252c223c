"""The search: prompt parsing, GA operators, elitism, norms, determinism, CMA-ES, auto-levels, outputs."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset
from wandb_records import offline_runs

from magnet import build_generator
from magnet.entrypoints import closing_loggers
from magnet.errors import UserError
from magnet.search import (
    ClipObjective,
    CMAESSearch,
    GeneticSearch,
    LatentSpace,
    RandomSearch,
    Refiner,
    Screen,
    WeightedPrompt,
    auto_levels,
    parse_prompt,
    read_png_metadata,
    run_search,
)
from magnet.search.outputs import contact_sheet, save_png
from magnet.search.refine import cutouts
from magnet.search.result import SearchResult
from magnet.search.strategies.genetic import breed, linear_crossover, mutate, point_crossover, select_elite
from magnet.training.wandb_logger import KimgWandbLogger


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return build_generator("swagan", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()


def red_minus_blue(images: torch.Tensor) -> torch.Tensor:
    """A cheap fixed objective standing in for CLIP where only the optimiser is under test."""
    return images[:, 0].mean((1, 2)) - images[:, 2].mean((1, 2))


def search(generator, strategy, space="z", truncation_psi=1.0, seed=0, batch_size=20, thumb_size=8):
    return run_search(strategy, LatentSpace(generator, space, truncation_psi), red_minus_blue, seed, batch_size,
                      thumb_size)


# ---------------------------------------------------------------- prompts


def test_parse_weighted_prompt_string_and_list_agree():
    expected = [
        WeightedPrompt("orange triangles", 1.0),
        WeightedPrompt("blue", 0.5),
        WeightedPrompt("text", -1.0),
    ]
    assert parse_prompt("orange triangles | blue:0.5 | text:-1") == expected
    assert parse_prompt(["orange triangles", "blue:0.5", "text:-1"]) == expected
    # a colon followed by words is part of the text, not a weight
    assert parse_prompt("still life: apples") == [WeightedPrompt("still life: apples", 1.0)]


@pytest.mark.parametrize("bad", ["", "   ", " | ", [], "blue:0.5 | :2", "red:0 | blue:0"])
def test_bad_prompts_fail_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="prompt"):
        parse_prompt(bad)


def test_missing_image_prompt_file_is_named(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        parse_prompt("a cat", image_prompts=[f"{missing}:0.5"])


# ---------------------------------------------------------------- GA operators


def test_linear_crossover_arithmetic_and_magnet_child_order():
    parents = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3) ** 1.5
    rng = torch.Generator().manual_seed(0)
    children = breed(parents, "linear", 0.333, 0.0, torch.ones(()), rng)
    assert children.shape == (16, 3)
    for j in range(4):
        for i in range(4):  # MAGnet: for j, for i: (1 - r) * P[i] + r * P[j]
            expected = 0.667 * parents[i] + 0.333 * parents[j]
            torch.testing.assert_close(children[4 * j + i], expected)
    torch.testing.assert_close(linear_crossover(torch.zeros(5), torch.ones(5), 0.333), torch.full((5,), 0.333))


def test_point_crossover_takes_a_head_and_a_tail():
    a, b = torch.zeros(6), torch.ones(6)
    assert point_crossover(a, b, 2).tolist() == [0, 0, 1, 1, 1, 1]
    parents = torch.stack([torch.full((8,), float(k)) for k in range(4)])
    children = breed(parents, "point", 0.333, 0.0, torch.ones(()), torch.Generator().manual_seed(1))
    for j in range(4):
        for i in range(4):
            child = children[4 * j + i]
            cut = int((child == i).sum())
            if i != j:
                assert 1 <= cut <= 7
                assert child.tolist() == [i] * cut + [j] * (8 - cut)
            else:
                assert child.tolist() == [i] * 8


def test_mutation_is_gaussian_with_the_given_scale():
    rng = torch.Generator().manual_seed(0)
    noise = mutate(torch.zeros(20_000), 0.25, torch.ones(()), rng)
    assert stats.kstest(noise.numpy(), stats.norm(0, 0.25).cdf).pvalue > 1e-3
    scale = torch.tensor([1.0, 4.0])
    noise = mutate(torch.zeros(20_000, 2), 0.25, scale, rng)
    np.testing.assert_allclose(noise.std(0).numpy(), [0.25, 1.0], rtol=0.03)


def test_select_elite_prefers_earlier_candidates_on_ties():
    scores = torch.tensor([0.1, 0.5, 0.3, 0.5, 0.2])
    assert select_elite(scores, 3).tolist() == [1, 3, 2]


def test_defaults_are_magnets(generator):
    ga = GeneticSearch()
    assert (ga.num_initial_samples, ga.num_parents, ga.generations) == (200, 4, 5)
    assert (ga.crossover, ga.recombination_amount, ga.mutation_amount) == ("linear", 0.333, 0.25)
    result = search(generator, ga, seed=0, batch_size=50)
    # 300 candidates as MAGnet (200 + 5 x 20); the 4 parents per generation keep their scores, so 280 renders
    assert sum(len(g.scores) for g in result.generations) == 300
    assert result.renders == 280


# ---------------------------------------------------------------- search behaviour


def small_ga(**kwargs) -> GeneticSearch:
    return GeneticSearch(num_initial_samples=24, generations=3, **kwargs)


def test_elitism_parents_are_the_previous_best_with_their_scores(generator):
    result = search(generator, small_ga(), seed=3, batch_size=16)
    space = LatentSpace(generator)
    for before, after in zip(result.generations, result.generations[1:], strict=False):
        top = select_elite(before.scores, 4)
        torch.testing.assert_close(after.latents[:4], before.latents[top])
        torch.testing.assert_close(after.scores[:4], before.scores[top])
        assert after.scores.max() >= before.scores.max()
    # a latent is a picture: rendering the stored latents again gives the stored scores
    last = result.generations[-1]
    with torch.no_grad():
        again = red_minus_blue(space.render(last.latents))
    torch.testing.assert_close(again, last.scores, atol=1e-5, rtol=1e-5)


def test_z_latents_keep_the_norm_of_a_gaussian_sample(generator):
    """MAGnet's quirk fixed: parents and children alike have norm sqrt(dim), not ~22.6 vs 100."""
    for crossover in ("linear", "point"):
        result = search(generator, small_ga(crossover=crossover), seed=0)
        for generation in result.generations:
            norms = generation.latents.norm(dim=1)
            torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(32)))


@pytest.mark.parametrize("space", ["z", "w", "w+"])
def test_same_seed_same_search_other_seed_other_search(generator, space):
    def run(seed):
        return search(generator, small_ga(), space, 0.7, seed, batch_size=10)

    a, b, c = run(5), run(5), run(6)
    for ga, gb in zip(a.generations, b.generations, strict=True):
        assert torch.equal(ga.latents, gb.latents) and torch.equal(ga.scores, gb.scores)
    assert not torch.equal(a.best_latent, c.best_latent)
    shape = {"z": (32,), "w": (32,), "w+": (generator.n_latent, 32)}[space]
    assert a.best_latent.shape == shape
    assert a.best_scores[-1] > a.best_scores[0]  # the search improved on its best random sample


def test_w_plus_point_crossover_is_style_mixing(generator):
    space = LatentSpace(generator, "w+")
    parents = space.sample(2, torch.Generator().manual_seed(0))
    child = point_crossover(parents[0], parents[1], 3)
    assert torch.equal(child[:3], parents[0, :3]) and torch.equal(child[3:], parents[1, 3:])


def test_search_does_not_touch_the_global_rng(generator):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    search(generator, small_ga(), seed=0)
    assert torch.equal(torch.rand(3), expected)


class QuadraticSpace:
    """A 10-d test function for CMA-ES: score = -|x - optimum|^2 (no generator involved)."""

    name, truncation_psi = "z", 1.0
    optimum = torch.linspace(-2, 2, 10)

    def sample(self, n, rng):
        return torch.randn(n, 10, generator=rng)

    def project(self, x):
        return x

    def noise_scale(self, population):
        return torch.ones(())

    def score(self, latents):
        return -((latents - self.optimum) ** 2).sum(1)


def test_cmaes_converges_on_a_quadratic():
    """Stepped by hand through ask/tell, with no thumbnails: the caller owns the loop."""
    space = QuadraticSpace()
    strategy = CMAESSearch(num_initial_samples=10, population=10, generations=150, sigma=1.0)
    strategy.start(space, torch.Generator().manual_seed(0))
    while not strategy.done:
        strategy.tell(space.score(strategy.ask()))
    result = strategy.result()
    assert isinstance(result, SearchResult) and strategy.generation == 151
    assert result.best_scores[0] < -5  # the best random sample is far off
    assert result.best_score > -1e-4
    torch.testing.assert_close(result.best_latent, space.optimum, atol=1e-2, rtol=0)


def test_cmaes_searches_the_generator(generator):
    strategy = CMAESSearch(num_initial_samples=24, population=8, generations=3)
    a = search(generator, strategy, "w+", seed=1)
    b = search(generator, strategy, "w+", seed=1)
    assert torch.equal(a.best_latent, b.best_latent)
    assert a.renders == 24 + 3 * 8
    assert a.best_scores == sorted(a.best_scores)


# ---------------------------------------------------------------- ask/tell: stepping, saving, choosing


@pytest.mark.parametrize("make", [lambda: small_ga(), lambda: small_ga(crossover="point"),
                                  lambda: CMAESSearch(num_initial_samples=8, population=6, generations=3)])
def test_a_search_saved_mid_way_resumes_to_the_same_result(generator, make, tmp_path):
    space = LatentSpace(generator, "w+")
    whole = make().start(space, torch.Generator().manual_seed(4))
    while not whole.done:
        whole.tell(red_minus_blue(space.render(whole.ask())).detach())

    first = make().start(space, torch.Generator().manual_seed(4))
    for _ in range(2):
        first.tell(red_minus_blue(space.render(first.ask())).detach())
    first.ask()  # saved with an ask pending
    torch.save(first.state_dict(), tmp_path / "search.pt")
    resumed = make().start(space, torch.Generator().manual_seed(99))  # another stream: the state must bring its own
    resumed.load_state_dict(torch.load(tmp_path / "search.pt", weights_only=True))
    while not resumed.done:
        resumed.tell(red_minus_blue(space.render(resumed.ask())).detach())
    assert len(resumed.history) == len(whole.history)
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert torch.equal(a.latents, b.latents) and torch.equal(a.scores, b.scores) and a.num_parents == b.num_parents
    assert torch.equal(resumed.best[0], whole.best[0])


def test_a_persons_choice_of_parents_replaces_the_selection(generator):
    ga = GeneticSearch(num_initial_samples=6, num_parents=4, generations=2, mutation_amount=0.0)
    space = LatentSpace(generator, "w")
    ga.start(space, torch.Generator().manual_seed(0))
    ga.tell(red_minus_blue(space.render(ga.ask())).detach())
    first = ga.history[0]
    ga.choose_parents([5, 2])  # two of the worse ones, say
    children = ga.ask()
    a, b = first.latents[5], first.latents[2]
    r = ga.recombination_amount
    expected = torch.stack([a, (1 - r) * b + r * a, (1 - r) * a + r * b, b])  # for j, for i: P[i] x P[j]
    torch.testing.assert_close(children, expected)
    ga.tell(red_minus_blue(space.render(children)).detach())
    assert ga.history[1].num_parents == 2 and torch.equal(ga.history[1].latents[:2], torch.stack([a, b]))
    with pytest.raises(ValueError, match="among the 6 candidates"):
        ga.choose_parents([6])
    with pytest.raises(ValueError, match="1 or more parents"):
        ga.choose_parents([])


def test_random_search_is_the_best_of_n_samples(generator):
    result = search(generator, RandomSearch(num_initial_samples=12), seed=3)
    space = LatentSpace(generator)
    samples = space.sample(12, torch.Generator().manual_seed(3))
    with torch.no_grad():
        scores = red_minus_blue(space.render(samples))
    assert result.renders == 12 and len(result.generations) == 1
    assert result.best_score == pytest.approx(float(scores.max()), abs=1e-6)
    assert torch.equal(result.best_latent, samples[scores.argmax()])


def test_strategies_by_name_and_by_config_group():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from magnet.search import STRATEGIES, build_strategy

    assert STRATEGIES.names() == ["cmaes", "genetic", "random"]
    assert build_strategy("genetic", generations=2) == GeneticSearch(generations=2)
    with pytest.raises(ValueError, match="unknown search strategy 'annealing'; known: cmaes, genetic, random"):
        build_strategy("annealing")
    conf = Path(__file__).parents[1] / "conf"
    for name in STRATEGIES.names():  # one yaml per registered strategy, with its defaults
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(conf), version_base="1.3"):
            cfg = compose("generate", overrides=[f"search/strategy={name}"])
        assert instantiate(cfg.search.strategy) == STRATEGIES.get(name)()


# ---------------------------------------------------------------- auto-levels and outputs


def test_auto_levels_matches_a_numpy_percentile_stretch():
    rng = np.random.default_rng(0)
    image = np.stack([rng.normal(0, 0.3, (40, 50)), rng.uniform(-1, 0.2, (40, 50)), rng.normal(0.5, 0.1, (40, 50))])
    out = auto_levels(torch.from_numpy(image).float())
    assert out.dtype == np.uint8 and out.shape == (40, 50, 3)
    for c in range(3):
        channel = image[c].astype(np.float32).astype(np.float64)
        lo, hi = np.percentile(channel, 0.1), np.percentile(channel, 99.9)
        expected = np.rint(np.clip((channel - lo) / (hi - lo) * 255, 0, 255)).astype(np.uint8)
        np.testing.assert_array_equal(out[..., c], expected)
        assert out[..., c].min() == 0 and out[..., c].max() == 255


def test_auto_levels_flat_channel_and_bad_shape():
    image = np.zeros((3, 4, 4))
    image[0] = np.linspace(-1, 1, 16).reshape(4, 4)
    out = auto_levels(image)
    assert (out[..., 1] == 128).all()  # flat 0.0 -> the plain mapping's 127.5, rounded half to even
    with pytest.raises(ValueError, match="3, H, W"):
        auto_levels(np.zeros((4, 4, 3)))


def test_png_metadata_round_trip(tmp_path):
    metadata = {
        "prompt": "orange triangles | blue:0.5",
        "seed": 7,
        "checkpoint": "/x/g.pt",
        "settings": {"search": {"space": "z"}},
        "score": 0.3125,
        "latent": [0.5, -1.25],
    }
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    path = save_png(tmp_path / "p.png", image, metadata)
    assert read_png_metadata(path) == metadata
    with Image.open(path) as png:
        assert png.text["prompt"] == metadata["prompt"]
        np.testing.assert_array_equal(np.asarray(png), auto_levels(image))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_painting_is_refused_and_nothing_written(tmp_path, value):
    image = np.zeros((3, 8, 8))
    image[1, 2, 3] = value
    with pytest.raises(UserError, match=r"refusing to write .*p\.png: 1 of its 192 values are NaN/Inf"):
        save_png(tmp_path / "out" / "p.png", image, {"prompt": "a cat"})
    assert not (tmp_path / "out").exists()


def test_png_metadata_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_png_metadata(tmp_path / "missing.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no 'magnet' metadata"):
        read_png_metadata(tmp_path / "plain.png")


def test_contact_sheet_puts_parents_on_top_and_child_i_j_at_row_j_column_i():
    thumbs = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
    sheet = np.asarray(contact_sheet(thumbs, torch.linspace(0, 1, 20), num_parents=4))
    label, gap = 12, 4
    assert sheet.shape == (5 * (16 + label) + gap, 4 * 16, 3)
    np.testing.assert_array_equal(sheet[:16, 16:32], thumbs[1].permute(1, 2, 0).numpy())
    i, j = 1, 2
    top = (1 + j) * (16 + label) + gap
    np.testing.assert_array_equal(
        sheet[top : top + 16, 16 * i : 16 * (i + 1)], thumbs[4 + 4 * j + i].permute(1, 2, 0).numpy()
    )


# ---------------------------------------------------------------- refinement


def test_refiner_climbs_the_objective_and_leaves_the_generator_untouched(generator):
    space = LatentSpace(generator, "z")
    z = space.sample(1, torch.Generator().manual_seed(0))[0]
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    refiner = Refiner(steps=15, lr=0.05, num_cutouts=2, cut_min=0.7)
    ws = refiner.run(space, red_minus_blue, z, torch.Generator().manual_seed(0))
    assert ws.shape == (generator.n_latent, 32)
    with torch.no_grad():
        start = red_minus_blue(space.render(z[None]))
        end = red_minus_blue(generator.synthesis(ws[None], noise_mode="const"))
    assert end > start + 0.05
    assert all(p.grad is None for p in generator.parameters())
    assert all(torch.equal(v, before[k]) for k, v in generator.state_dict().items())


class ScriptedScores:
    """Whole (generator-sized) images get the scores of a script, in order, whatever they show, so which step
    is best is known; cutouts get red minus blue, so the steps do move the latent."""

    def __init__(self, script, size):
        self.script, self.size, self.images = list(script), size, []

    def __call__(self, images):
        if images.shape[-1] != self.size:
            return red_minus_blue(images)
        self.images.append(images.detach().clone())
        return torch.tensor([self.script[len(self.images) - 1]])


def test_refiner_hands_back_the_best_latent_it_saw(generator):
    """The score climbs, then falls: the latent of the best step is returned, not the last one."""
    space = LatentSpace(generator, "z")
    z = space.sample(1, torch.Generator().manual_seed(0))[0]
    scripted = ScriptedScores([0.1, 0.3, 0.2, 0.15], generator.size)  # the start, then after steps 1, 2, 3
    ws = Refiner(steps=3, lr=0.05, num_cutouts=1).run(space, scripted, z, torch.Generator().manual_seed(0))
    assert len(scripted.images) == 4 and not torch.equal(scripted.images[1], scripted.images[3])
    with torch.no_grad():
        torch.testing.assert_close(generator.synthesis(ws[None], noise_mode="const"), scripted.images[1])


def misleading(images: torch.Tensor) -> torch.Tensor:
    """red minus blue on the whole (32 px) image, its opposite on the CLIP-sized cutouts that refining climbs."""
    score = red_minus_blue(images)
    return score if images.shape[-1] == 32 else -score


def test_refiner_returns_the_start_when_every_step_is_worse(generator):
    space = LatentSpace(generator, "w+")
    start = space.sample(1, torch.Generator().manual_seed(0))[0]
    refiner = Refiner(steps=3, lr=0.1, num_cutouts=1, cut_min=1.0)
    assert torch.equal(refiner.run(space, misleading, start, torch.Generator().manual_seed(0)), start)


def test_cutouts_are_crops_of_the_image():
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    views = cutouts(image, n=5, size=8, min_fraction=1.0, rng=torch.Generator().manual_seed(0))
    assert views.shape == (10, 3, 8, 8)
    for k in range(5):  # full-size crops: the image itself, or its mirror
        pair = views[2 * k : 2 * k + 2]
        assert torch.allclose(pair, image) or torch.allclose(pair, image.flip(-1))


# ---------------------------------------------------------------- the training callback


class TinyGAN(pl.LightningModule):
    """Just what SearchPreview reads: an EMA generator and a kimg counter (500 images per step)."""

    def __init__(self, g_ema):
        super().__init__()
        self.g_ema = g_ema
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.images_seen = 0

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000

    def training_step(self, batch, batch_idx):
        self.images_seen += 500
        return (self.weight - 1).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD([self.weight], lr=0.1)


def test_search_preview_logs_the_search_of_each_prompt_every_n_kimg(generator, tmp_path):
    from magnet.training.callbacks.search_preview import SearchPreview

    preview = SearchPreview(
        ["a red circle"],
        every_kimg=1.0,
        clip={"model_name": "ViT-S-32-alt", "pretrained": None},
        strategy=RandomSearch(num_initial_samples=6),  # any strategy: here the random baseline
        seed=2,
        batch_size=8,
    )
    generator.train()
    w_avg = generator.w_avg.clone()
    logger = pl.loggers.CSVLogger(tmp_path)
    wandb_logger = KimgWandbLogger(offline=True, save_dir=tmp_path)
    trainer = pl.Trainer(
        max_steps=4,
        default_root_dir=tmp_path,
        logger=[logger, wandb_logger],
        callbacks=[preview],
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    data = DataLoader(TensorDataset(torch.zeros(8, 1)), batch_size=1)
    with closing_loggers([wandb_logger]):
        trainer.fit(TinyGAN(generator), data)
    assert generator.training is True  # the callback searched in eval mode and put training mode back
    generator.eval()
    assert torch.equal(generator.w_avg, w_avg)
    folder = tmp_path / "search_preview" / "a-red-circle"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["kimg000001.000.png", "kimg000002.000.png"]  # at 1 and 2 kimg
    scores = [(float(row["train/kimg"]), float(row["search/a-red-circle"]))
              for row in csv.DictReader(open(Path(logger.log_dir) / "metrics.csv")) if row.get("search/a-red-circle")]
    assert [kimg for kimg, _ in scores] == [1.0, 2.0]
    assert preview.state_dict() == {"next_kimg": 3.0}

    # W&B: a table of (kimg, prompt, seed, score, image) that grows by one row per prompt and preview
    (run,) = offline_runs(tmp_path)
    logged = [row for row in run.rows if row.get("search/preview/_type") == "incremental-table-file"]
    assert [row["train/kimg"] for row in logged] == [1.0, 2.0]
    increments = [json.loads((run.folder / "files" / row["search/preview/path"]).read_text()) for row in logged]
    assert all(table["columns"] == ["kimg", "prompt", "seed", "score", "image"] for table in increments)
    rows = [r for table in increments for r in table["data"]]
    assert [r[:3] for r in rows] == [[1.0, "a red circle", 2], [2.0, "a red circle", 2]]
    assert [r[3] for r in rows] == pytest.approx([score for _, score in scores])
    tables = [a for a in run.artifacts if a.type == "wandb-run-incremental-table"]
    assert all(any(c.path.startswith("media/images/") and c.path.endswith(".png") for c in a.manifest.contents)
               for a in tables) and len(tables) == 2  # each increment carries its painting

    # the logged painting is the search's best, auto-levelled (the generator did not change in between)
    (objective,) = preview.objectives(torch.device("cpu"))
    result = run_search(RandomSearch(num_initial_samples=6), LatentSpace(generator), objective, seed=2, batch_size=8)
    expected = auto_levels(LatentSpace(generator).render(result.best_latent[None])[0].detach())
    logged = np.asarray(Image.open(folder / files[-1]))
    np.testing.assert_array_equal(logged, expected)


def test_search_preview_rejects_a_bad_prompt_at_start_up():
    from magnet.training.callbacks.search_preview import SearchPreview

    with pytest.raises(ValueError, match="empty"):
        SearchPreview([" "])


def test_clip_objective_is_the_weighted_sum_of_cosines_with_text_and_image_prompts(museum_paintings):
    from magnet.clip import load_clip

    clip = load_clip("ViT-S-32-alt", None)
    painting = museum_paintings[0]
    prompts = parse_prompt("orange triangles | text:-1", image_prompts=[f"{painting}:0.5"])
    assert prompts[-1] == WeightedPrompt(str(painting), 0.5, is_image=True)
    objective = ClipObjective(clip, prompts)
    images = torch.rand(3, 3, 32, 32, requires_grad=True) * 2 - 1
    scores = objective(images)
    with torch.no_grad():
        feats = clip.encode_images(images)
        text = clip.encode_text(["orange triangles", "text"])
        picture = clip.encode_pil([Image.open(painting).convert("RGB")])[0]
        expected = feats @ text[0] - feats @ text[1] + 0.5 * feats @ picture
    torch.testing.assert_close(scores.detach(), expected, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(scores.sum(), images)  # differentiable, for the refinement
    assert grad.abs().sum() > 0


def test_bad_search_settings_are_named(generator):
    with pytest.raises(ValueError, match="crossover='uniform'"):
        GeneticSearch(crossover="uniform")
    with pytest.raises(ValueError, match="num_parents=8"):
        GeneticSearch(num_initial_samples=4, num_parents=8)
    with pytest.raises(ValueError, match="space='x'"):
        search(generator, small_ga(), space="x")
    with pytest.raises(ValueError, match="batch_size=0"):
        search(generator, small_ga(), batch_size=0)


# ---------------------------------------------------------------- the fast path: screening and bf16


def todays_scores(generator, latents, stop_at=None):
    """The score of z latents rendered the way the search always did: mapping, then the const-noise synthesis."""
    with torch.no_grad():
        return red_minus_blue(generator.synthesis(generator.mapping(latents), noise_mode="const", stop_at=stop_at))


def test_without_screening_in_fp32_the_search_is_todays_exactly(generator):
    result = run_search(small_ga(), LatentSpace(generator), red_minus_blue, 4, 64, 8, precision="fp32",
                        screen=Screen(keep=0))
    default = search(generator, small_ga(), seed=4, batch_size=64)
    assert result.previews == 0 and result.renders == 24 + 3 * 16
    for g, d in zip(result.generations, default.generations, strict=True):
        assert torch.equal(g.latents, d.latents) and torch.equal(g.scores, d.scores)
        new = g.latents[g.num_parents:]  # one batch each: the parents keep the scores they had
        assert torch.equal(g.scores[g.num_parents:], todays_scores(generator, new))


def test_the_preview_is_the_smallest_image_of_the_generator_at_least_that_wide(generator):
    space = LatentSpace(generator)
    assert generator.image_sizes == [8, 16, 32]
    assert [space.preview_size(px) for px in (1, 8, 9, 16, 17, 32, 128)] == [8, 8, 16, 16, None, None, None]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_screened_search_scores_only_the_best_previews_at_full_size_and_is_reproducible(generator, precision):
    def run(seed, strategy=None):
        return run_search(strategy or small_ga(), LatentSpace(generator), red_minus_blue, seed, 64, 8,
                          precision=precision, screen=Screen(preview_size=16, keep=6))

    a, b, exact = run(4), run(4), search(generator, small_ga(), seed=4, batch_size=64)
    for ga, gb in zip(a.generations, b.generations, strict=True):
        assert torch.equal(ga.latents, gb.latents) and torch.equal(ga.scores, gb.scores)
        assert torch.equal(ga.thumbnails, gb.thumbnails) and ga.thumbnails.shape[-1] == 8
    # The same 24 initial candidates; the 6 whose 16 px images score best are kept, in their order.
    population = exact.generations[0].latents
    kept = torch.argsort(todays_scores(generator, population, stop_at=16), descending=True)[:6].sort().values
    first = a.generations[0]
    if precision == "fp32":
        assert torch.equal(first.latents, population[kept])
    else:  # bf16 may swap near-ties at the edge of the kept six
        assert len({tuple(x) for x in first.latents.tolist()} & {tuple(x) for x in population[kept].tolist()}) >= 5
    # ... and scored at full size, as every child is.
    for g in a.generations:
        new = g.latents[g.num_parents:]
        torch.testing.assert_close(g.scores[g.num_parents:], todays_scores(generator, new),
                                   atol=0 if precision == "fp32" else 0.02, rtol=0)
    assert (a.previews, a.renders) == (24, 6 + 3 * 16)
    assert a.generations[1].num_parents == 4 and len(a.generations[1].scores) == 4 + 16
    # A strategy started by hand sees the whole population as its initial one (the unit of its steps).
    strategy = small_ga()
    run(4, strategy)
    assert torch.equal(strategy.initial_population, population)


@pytest.mark.parametrize(("make", "space_name"), [
    (lambda: small_ga(), "w+"),
    (lambda: CMAESSearch(num_initial_samples=24, population=8, generations=2), "w"),
    (lambda: RandomSearch(num_initial_samples=24), "z"),
])
def test_every_strategy_and_space_takes_a_screened_start_and_resumes_it(generator, make, space_name):
    space = LatentSpace(generator, space_name)
    screen = Screen(preview_size=16, keep=6)
    result = run_search(make(), space, red_minus_blue, 2, 64, 8, screen=screen)
    assert result.previews == 24 and len(result.generations[0].scores) == 6
    # Every kept score is a full-size one, parents carried over included.
    for g in result.generations:
        with torch.no_grad():
            full = red_minus_blue(space.render(g.latents))
        torch.testing.assert_close(g.scores, full, atol=1e-5, rtol=0)
    # The state after the screened generation 0 continues into the same search.
    from magnet.search.evaluate import Evaluator
    from magnet.search.run import search_generations

    first, evaluate = make(), Evaluator(space, red_minus_blue, 64, 8, screen=screen)
    next(search_generations(first, evaluate, seed=2))
    state = first.state_dict()
    again = make().start(space, torch.Generator())
    again.load_state_dict(state)
    assert torch.equal(again.initial_population, first.initial_population) and len(again.initial_population) == 24
    while not again.done:
        again.tell(*evaluate(again.ask()))
    assert again.best[1] == pytest.approx(result.best_score, abs=1e-6)


def test_a_population_drawn_around_a_latent_is_not_screened_and_too_few_kept_for_the_parents_is_refused(generator):
    space = LatentSpace(generator)
    centre = space.sample(1, torch.Generator().manual_seed(0))[0]
    result = run_search(small_ga(), space, red_minus_blue, 4, 64, 8, screen=Screen(preview_size=16, keep=6),
                        around=centre)
    assert result.previews == 0 and len(result.generations[0].scores) == 24
    with pytest.raises(UserError, match=r"screen.keep=3 .* 4 parents"):
        run_search(small_ga(), space, red_minus_blue, 4, 64, 8, screen=Screen(preview_size=16, keep=3))
    with pytest.raises(ValueError, match="keep=-1"):
        Screen(keep=-1)
    with pytest.raises(RuntimeError, match="only the initial population"):
        strategy = small_ga().start(space, torch.Generator().manual_seed(0))
        strategy.ask()
        strategy.tell(torch.zeros(24))
        strategy.ask()
        strategy.tell(torch.zeros(2), kept=[0, 1])


class RedMinusBlue(torch.nn.Module):
    """red_minus_blue with the `prompts` that paint() writes into the PNG."""

    prompts = parse_prompt("red")

    def forward(self, images):
        return red_minus_blue(images)


def paint_with(generator, out, strategy, precision, keep):
    from magnet.search import PaintSettings, paint

    settings = PaintSettings(thumb_size=8, precision=precision, screen={"preview_size": 16, "keep": keep},
                             contact_sheets=False)
    return paint(generator, RedMinusBlue(), 4, out, strategy, settings, {"checkpoint": "tiny"})


def test_the_saved_painting_is_full_size_float32_whatever_the_search_ran_in(generator, tmp_path):
    # One candidate: every setting chooses the same latent, and the files are the same pixels.
    one = RandomSearch(num_initial_samples=1)
    exact = paint_with(generator, tmp_path / "exact", one, "fp32", 0)
    fast = paint_with(generator, tmp_path / "fast", one, "bf16", 6)
    assert np.array_equal(np.asarray(Image.open(exact)), np.asarray(Image.open(fast)))
    # A real search in bf16, screened: the PNG is the float32 full-size render of its latent, with its score.
    path = paint_with(generator, tmp_path / "ga", small_ga(), "bf16", 6)
    meta = read_png_metadata(path)
    image = LatentSpace(generator).render_one(meta["latent"])
    assert np.array_equal(np.asarray(Image.open(path)), auto_levels(image)) and image.shape == (3, 32, 32)
    assert meta["score"] == pytest.approx(float(red_minus_blue(image[None])), abs=1e-6)
    record = json.loads((path.parent / "search.json").read_text())
    assert (record["precision"], record["previews"], record["renders"]) == ("bf16", 24, 6 + 3 * 16)
    assert len(record["generations"][0]["scores"]) == 6
