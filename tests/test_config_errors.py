"""A bad config value fails first, in one line naming its key, its value and what is allowed.

Through the real command lines (`error: ...` on stderr, exit 2, no traceback, nothing slow done first), and
in-process for the many settings of every entry point: each is refused before data, networks or CLIP.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from train_config import CONF, compose_train

import eval as eval_script
import generate as generate_script
from data_modules.prepare import prepare
from magnet.entrypoints import check_annotations, instantiate
from magnet.errors import UserError
from train import train

ROOT = CONF.parent
QUICK = 30  # s: python's start and imports (3-10 s on a loaded 2-core machine); crops, networks, CLIP take longer


def run_cli(*args, env=None):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return proc, time.monotonic() - start


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def cli_cases(tmp_path, tiny_paintings):
    """(arguments, the one error line expected, paths that must not exist afterwards) per command line."""
    run = f"hydra.run.dir={tmp_path / 'run'}"
    short = ["model.total_kimg=0.004", "extras.print_config=false", run]  # seconds, should a check be missing
    folder = ["train.py", "data=folder", f"data.image_dir={tiny_paintings}", *short]
    missing_ckpt = f"ckpt_path={tmp_path / 'missing.pt'}"  # a later check: the bad value must be named first
    return {
        "lr": ([*folder, "model.lr=-1"], "model.lr=-1: must be a number > 0", ["run/checkpoints", "run/csv"]),
        "batch": ([*folder, "data.batch_size=0"], "data.batch_size=0: must be an integer >= 1", ["run/csv"]),
        "epochs": ([*folder, "trainer.max_epochs=abc"], "trainer.max_epochs='abc': must be an integer or null",
                   ["run/csv"]),
        "met": (["train.py", "data=met", f"paths.data_dir={tmp_path / 'data'}", "model.lr=-1", *short],
                "model.lr=-1: must be a number > 0", ["data"]),
        "n_images": (["generate.py", "prompt=a", missing_ckpt, "n_images=0", run],
                     "n_images=0: must be an integer >= 1", []),
        "search_batch": (["generate.py", "prompt=a", missing_ckpt, "search.batch_size=0", run],
                         "search.batch_size=0: must be an integer >= 1", []),
        "num_gen": (["eval.py", missing_ckpt, f"data_dir={tiny_paintings}", "metrics.num_gen=0", run],
                    "metrics.num_gen=0: must be an integer >= 2", []),
        "required": (["eval.py", run], "ckpt_path, data_dir not set: give ckpt_path=... data_dir=...", []),
        "filter": (["-m", "data_modules.prepare", "stage=all", f"root={tmp_path / 'wikiart'}", "filter.top_k=0",
                    run], "filter.top_k=0: must be null or an integer >= 1", ["wikiart"]),
        "rate": (["-m", "data_modules.prepare", "stage=scrape", f"root={tmp_path / 'wikiart'}",
                  "scrape.http.requests_per_second=0", run],
                 "scrape.http.requests_per_second=0: must be null or a number > 0", ["wikiart"]),
    }


@pytest.mark.parametrize("case", ["lr", "batch", "epochs", "met", "n_images", "search_batch", "num_gen",
                                  "required", "filter", "rate"])
def test_a_bad_value_on_the_command_line_is_one_error_line(case, cli_cases, tmp_path):
    args, expected, not_made = cli_cases[case]
    proc, seconds = run_cli(*args)
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert seconds < QUICK
    for path in not_made:  # refused before any data, run output or crops were made
        assert not (tmp_path / path).exists(), path


def test_hydra_full_error_shows_the_traceback(tiny_paintings, tmp_path):
    proc, _ = run_cli("train.py", "data=folder", f"data.image_dir={tiny_paintings}", "trainer.max_epochs=abc",
                      "extras.print_config=false", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert "ConfigError: trainer.max_epochs='abc'" in proc.stderr and not error_lines(proc.stderr)


def test_a_bug_keeps_its_traceback(tmp_path):
    # generate.py as `python generate.py prompt=a` runs it, with a function broken by a ZeroDivisionError
    code = ("import runpy, sys, magnet.search.prompts as prompts; prompts.collect_prompts = lambda *a: 1 / 0; "
            f"sys.argv = ['generate.py', 'prompt=a', 'hydra.run.dir={tmp_path}']; "
            "runpy.run_path('generate.py', run_name='__main__')")
    proc, _ = run_cli("-c", code)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert not error_lines(proc.stderr)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


TRAIN_CASES = [
    ("model.lr=-1", "model.lr=-1: must be a number > 0"),
    ("model.lr=abc", "model.lr='abc': must be a number"),
    ("model.betas=[0.5]", r"model.betas=\[0.5\]: must be two numbers"),
    ("model.betas=[0.0,1.0]", r"model.betas\[1\]=1.0: must be a number >= 0 and < 1"),
    ("model.d_reg_every=0", "model.d_reg_every=0: must be an integer >= 1"),
    ("model.style_mixing=2", "model.style_mixing=2: must be a number >= 0 and <= 1"),
    ("model.ema_rampup=0", "model.ema_rampup=0: must be null or a number > 0"),
    ("model.from_rgb_kernel=2", "model.from_rgb_kernel=2: must be one of 1, 3"),
    ("model.total_kimg=0", "model.total_kimg=0: must be a number > 0"),
    ("model.network.arch=gan", "model.network.arch='gan': must be one of swagan, stylegan2"),
    ("model.network.channel_max=0", "model.network.channel_max=0: must be an integer >= 1"),
    ("data.size=100", r"model.network.size=100: must be one of 32, 64, .* \(model.network.size is \$\{data.size\}\)"),
    ("model.augment.p=2", "model.augment.p=2: must be a number >= 0 and <= 1"),
    ("model.augment.mode=often", "model.augment.mode='often': must be one of adaptive, fixed, none"),
    ("model.augment.ada_target=2", "model.augment.ada_target=2: must be a number >= 0 and <= 1"),
    ("model.augment.ops=bgcx", "model.augment.ops='bgcx': must be a preset \\(blit, geom, color, bg, bgc\\)"),
    ("data.batch_size=0", "data.batch_size=0: must be an integer >= 1"),
    ("data.num_workers=-1", "data.num_workers=-1: must be an integer >= 0"),
    ("data.flip=maybe", "data.flip='maybe': must be true or false"),
    ("data.image_dir=/nowhere", "data.image_dir='/nowhere': must be an existing folder of images"),
    ("seed=-1", "seed=-1: must be an integer >= 0"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc': must be an integer or null"),
    ("trainer.max_epochs=-5", "trainer.max_epochs=-5: `max_epochs` must be a non-negative integer or -1"),
    ("trainer.log_every_n_steps=1.5", "trainer.log_every_n_steps=1.5: must be an integer or null"),
    ("trainer.precision=64x", "trainer.precision='64x': must be 64, 32, 16, .*'bf16-mixed'"),
    ("trainer.deterministic=yes", "trainer.deterministic='yes': must be true or false, 'warn' or null"),
    ("trainer.devices=abc", "trainer.devices='abc': `devices` selected with `CPUAccelerator` should be an int"),
    ("+trainer.strategy=fast", "trainer.strategy='fast': You selected an invalid strategy name"),
    ("logger.csv.name=5", "logger.csv.name=5: must be a string or null"),
    ("callbacks.samples.every_kimg=0.0001", "callbacks.samples.every_kimg=0.0001: must be a number >= 0.001"),
    ("callbacks.samples.num_images=0", "callbacks.samples.num_images=0: must be an integer >= 1"),
    ("callbacks.kimg_checkpoint.keep=-1", "callbacks.kimg_checkpoint.keep=-1: must be null or an integer >= 0"),
    ("callbacks.kimg_checkpoint.monitor=5", "callbacks.kimg_checkpoint.monitor=5: must be a string or null"),
    ("callbacks.throughput.every_kimg=0", "callbacks.throughput.every_kimg=0: must be a number >= 0.001"),
    ("logger=wandb;logger.wandb.log_model=last", "logger.wandb.log_model='last': must be true or false or 'all'"),
    ("logger=wandb;logger.wandb.offline=maybe", "logger.wandb.offline='maybe': must be true or false or null"),
    ("callbacks=with_fid;callbacks.fid.settings.num_gen=1", "callbacks.fid.settings.num_gen=1: must be an integer"),
    ("callbacks=with_fid;callbacks.fid.data_dir=/nowhere", "callbacks.fid.data_dir='/nowhere': must be an existing"),
    ("callbacks=with_fid;callbacks.best_fid.save_top_k=x", "callbacks.best_fid.save_top_k='x': must be an integer"),
    ("callbacks=[default,search_preview];callbacks.search_preview.strategy.num_parents=0",
     "callbacks.search_preview.strategy.num_parents=0: must be an integer >= 1 and <= 32"),
    ("callbacks=[default,search_preview];callbacks.search_preview.space=q",
     "callbacks.search_preview.space='q': must be one of z, w, w\\+"),
]


@pytest.mark.parametrize(("overrides", "expected"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_refuses_each_bad_setting_before_anything_is_built(overrides, expected, tmp_path, tiny_paintings):
    cfg = compose_train(tmp_path / "run", tiny_paintings, "model.total_kimg=0.004", *overrides.split(";"))
    with pytest.raises(UserError) as excinfo:
        train(cfg)
    assert re.match(expected, one_line_error(excinfo))
    assert not (tmp_path / "run").exists()  # no checkpoint, log or sample folder


def compose_in(config: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config, overrides=overrides)


GENERATE_CASES = [
    ("n_images=-1", "n_images=-1: must be an integer >= 1"),
    ("seed=-1", "seed=-1: must be an integer >= 0"),
    ("search.space=q", "search.space='q': must be one of z, w, w\\+"),
    ("search.truncation_psi=abc", "search.truncation_psi='abc': must be a number"),
    ("search.thumb_size=4", "search.thumb_size=4: must be an integer >= 8"),
    ("inference.precision=fp16",
     r"search.precision='fp16': must be one of fp32, bf16, auto \(search.precision is \$\{inference.precision\}\)"),
    ("search.precision=half", "search.precision='half': must be one of fp32, bf16, auto"),
    ("search.screen.keep=-2", "search.screen.keep=-2: must be an integer >= 0"),
    ("search.screen.preview_size=abc", "search.screen.preview_size='abc': must be an integer"),
    ("search.screen.keep=3", "search.screen.keep=3 keeps fewer initial candidates than the 4 parents of the search"),
    ("search.strategy.num_parents=0", "search.strategy.num_parents=0: must be an integer >= 1 and <= 200"),
    ("search.strategy.crossover=uniform", "search.strategy.crossover='uniform': must be one of linear, point"),
    ("search.strategy.generations=abc", "search.strategy.generations='abc': must be an integer"),
    ("search/strategy=cmaes;search.strategy.population=1", "search.strategy.population=1: must be an integer >= 2"),
    ("search/strategy=cmaes;search.strategy.sigma=0", "search.strategy.sigma=0: must be a number > 0"),
    ("search/strategy=random;+search.strategy.generations=2", "search.strategy.generations=2: must be 0"),
    ("refine.steps=-1", "refine.steps=-1: must be an integer >= 0"),
    ("refine.cut_min=2", "refine.cut_min=2: must be a number > 0 and <= 1"),
    ("refine.lr=0", "refine.lr=0: must be a number > 0"),
    ("output.gif=yes", "output.gif='yes': must be true or false"),
    ("clip.model_name=ViT-Q-99", "clip.model_name='ViT-Q-99': must be an open_clip model"),
    ("clip.pretrained=/nowhere.pt", "clip.pretrained='/nowhere.pt': must be an existing weights file"),
    ("device=gpu", "device='gpu': must be a torch device"),
]


@pytest.mark.parametrize(("overrides", "expected"), GENERATE_CASES, ids=[c[0] for c in GENERATE_CASES])
def test_generate_refuses_each_bad_setting_before_loading_anything(overrides, expected, tmp_path, monkeypatch):
    def slow(*args, **kwargs):
        raise AssertionError("the generator was loaded before the settings were checked")

    monkeypatch.setattr(generate_script, "open_generator", slow)
    cfg = compose_in("generate", ["prompt=a", "ckpt_path=g.pt", f"output_dir={tmp_path}", *overrides.split(";")])
    with pytest.raises(UserError) as excinfo:
        generate_script.generate(cfg)
    assert re.match(expected, one_line_error(excinfo))


EVAL_CASES = [
    ("metrics.num_gen=abc", "metrics.num_gen='abc': must be an integer >= 2"),
    ("metrics.names=[fidx]", "metrics.names='fidx': must be metric names"),
    ("metrics.batch_size=0", "metrics.batch_size=0: must be an integer >= 1"),
    ("metrics.size=4", "metrics.size=4: must be null or an integer >= 8"),
    ("metrics.noise_mode=loud", "metrics.noise_mode='loud': must be one of random, const, none"),
    ("inference.precision=fp16",
     r"metrics.precision='fp16': must be one of fp32, bf16, auto \(metrics.precision is \$\{inference.precision\}\)"),
    ("metrics.kid_subset_size=1", "metrics.kid_subset_size=1: must be an integer >= 2"),
    ("metrics.seed=-1", "metrics.seed=-1: must be an integer >= 0"),
    ("metrics.inception_weights=/nowhere.pth", "metrics.inception_weights='/nowhere.pth': must be an existing"),
    ("metrics.names=[clip_fd];clip.model_name=ViT-Q-99",
     r"metrics.clip.model_name='ViT-Q-99': must be an open_clip model.* \(metrics.clip is \$\{clip\}\)"),
    ("device=gpu", "device='gpu': must be a torch device"),
    ("data_dir=/nowhere", "Image folder '/nowhere' does not exist"),
]


@pytest.mark.parametrize(("overrides", "expected"), EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_eval_refuses_each_bad_setting_before_loading_anything(overrides, expected, tmp_path, tiny_paintings,
                                                                monkeypatch):
    def slow(*args, **kwargs):
        raise AssertionError("the generator was loaded before the settings were checked")

    monkeypatch.setattr(eval_script, "open_generator", slow)
    cfg = compose_in("eval", ["ckpt_path=g.pt", f"data_dir={tiny_paintings}", f"output_dir={tmp_path}",
                              *overrides.split(";")])
    with pytest.raises(UserError) as excinfo:
        eval_script.run_eval(cfg)
    assert re.match(expected, one_line_error(excinfo))


PREPARE_CASES = [
    ("stage=clean", "stage='clean': must be one of scrape, crop, filter, all"),
    ("scrape.workers=0", "scrape.workers=0: must be an integer >= 1"),
    ("scrape.base_url=ftp://example.org", "scrape.base_url='ftp://example.org': must be an http:// or https://"),
    ("scrape.letters=''", "scrape.letters='': must be a non-empty text"),
    ("scrape.died_before=1700", "scrape.died_before=1700: must be an integer >= 1801"),
    ("scrape.manifest_save_every_s=0", "scrape.manifest_save_every_s=0: must be a number > 0"),
    ("scrape.http.timeout=abc", "scrape.http.timeout='abc': must be a number > 0"),
    ("scrape.http.retries=-1", "scrape.http.retries=-1: must be an integer >= 0"),
    ("crop.size=0", "crop.size=0: must be an integer >= 1"),
    ("crop.jpeg_quality=101", "crop.jpeg_quality=101: must be an integer >= 1 and <= 100"),
    ("crop.workers=0", "crop.workers=0: must be null or an integer >= 1"),
    ("crop.overwrite=yes", "crop.overwrite='yes': must be true or false"),
    ("filter.threshold=5", "filter.threshold=5: must be null or a number >= -1 and <= 1"),
    ("filter.prompts=[]", r"filter.prompts=\[\]: must be a non-empty list of texts"),
    ("filter.batch_size=0", "filter.batch_size=0: must be an integer >= 1"),
    ("clip.model_name=ViT-Q-99", "clip.model_name='ViT-Q-99': must be an open_clip model"),
    ("device=tpu", "device='tpu': must be a torch device"),
]


@pytest.mark.parametrize(("overrides", "expected"), PREPARE_CASES, ids=[c[0] for c in PREPARE_CASES])
def test_prepare_refuses_each_bad_setting_before_any_stage_runs(overrides, expected, tmp_path):
    cfg = compose_in("prepare", [f"root={tmp_path / 'wikiart'}", *overrides.split(";")])
    with pytest.raises(UserError) as excinfo:
        prepare(cfg)  # stage=all: a bad crop or filter setting is refused before the scrape starts
    assert re.match(expected, one_line_error(excinfo))
    assert not (tmp_path / "wikiart").exists()


TRAIN_GROUPS = [f"experiment={p.stem}" for p in (CONF / "experiment").glob("*.yaml")] + \
    [f"trainer={p.stem}" for p in (CONF / "trainer").glob("*.yaml")] + \
    [f"logger={p.stem}" for p in (CONF / "logger").glob("*.yaml")] + \
    ["callbacks=with_fid", "callbacks=[default,search_preview]", "model=stylegan2", "model/augment=fixed"]


@pytest.mark.parametrize("choice", sorted(TRAIN_GROUPS))
def test_every_shipped_config_passes_the_type_checks(choice, tmp_path):
    """The checks against constructors' type hints refuse no value that the shipped configs give."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[choice, f"paths.output_dir={tmp_path}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    nodes = [("data", cfg.data), ("model", cfg.model), ("trainer", cfg.trainer)]
    for group in ("callbacks", "logger"):
        nodes += [(f"{group}.{name}", node) for name, node in (cfg.get(group) or {}).items() if "_target_" in node]
    for key, node in nodes:
        check_annotations(node, key)
    strategies = [f"search/strategy={p.stem}" for p in (CONF / "search" / "strategy").glob("*.yaml")]
    for choice in strategies:
        check_annotations(compose_in("generate", [choice]).search.strategy, "search.strategy")


def test_lightning_refusals_name_the_trainer_setting_found_in_their_message():
    """Lightning's own messages (MisconfigurationException, ValueError) become one line under the key."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is there")
    cfg = compose_train(Path("/unused"), Path("/unused"), "trainer.accelerator=gpu")
    with pytest.raises(UserError, match=r"^trainer.accelerator='gpu': No supported gpu backend found!$"):
        instantiate(cfg.trainer, "trainer")
