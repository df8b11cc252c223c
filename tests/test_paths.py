"""Runs started from any folder read and write under the checkout, or under `paths.root_dir` when given."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from train_config import CONF, TINY

ROOT = Path(__file__).resolve().parents[1]


def _compose(name: str, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(("name", "required"), [("train", []), ("generate", []), ("prepare", []),
                                                ("eval", ["ckpt_path=g", "data_dir=d"])])
def test_every_entry_points_folders_are_under_the_checkout_from_any_cwd(monkeypatch, tmp_path, name, required):
    monkeypatch.chdir(tmp_path)
    cfg = _compose(name, *required)
    assert Path(cfg.paths.root_dir) == ROOT
    given = _compose(name, *required, f"paths.root_dir={tmp_path / 'scratch'}")
    keys = {"train": ["paths.data_dir", "paths.log_dir", "hydra.run.dir", "hydra.sweep.dir", "data.cache_dir"],
            "generate": ["hydra.run.dir"], "eval": ["hydra.run.dir"],
            "prepare": ["root", "scrape.out_dir", "data.image_dir"]}[name]
    for key in keys:
        assert Path(OmegaConf.select(given, key)).is_relative_to(tmp_path / "scratch"), key


def test_wikiart_training_reads_the_crops_prepare_writes():
    assert _compose("train", "data=wikiart").data.image_dir == _compose("prepare").data.image_dir


def test_train_started_from_another_folder_writes_its_run_under_the_checkout(tmp_path, tiny_paintings):
    task = f"test_cwd_{uuid.uuid4().hex[:8]}"  # its own folder under logs/, removed afterwards
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        done = subprocess.run([sys.executable, str(ROOT / "train.py"), *TINY, f"data.image_dir={tiny_paintings}",
                               "model.total_kimg=0.004", "~callbacks.samples", f"task_name={task}"],
                              cwd=elsewhere, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        (run,) = (ROOT / "logs" / task / "runs").iterdir()
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / f"{task}.log").is_file()
        assert f"Run folder: {run}" in done.stdout
        assert list(elsewhere.iterdir()) == []  # nothing where it was started
    finally:
        shutil.rmtree(ROOT / "logs" / task, ignore_errors=True)


def test_a_local_config_is_applied_when_present_and_ignored_by_git(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local" / "default.yaml").unlink(missing_ok=True)  # this machine's own, if it has one
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf), version_base="1.3"):
        assert compose("train").data.num_workers == 4  # no local file: the defaults
    (conf / "local" / "default.yaml").write_text("# @package _global_\ndata:\n  num_workers: 7\nseed: 3\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("train", overrides=["seed=5"])
        debug = compose("train", overrides=["debug=default"])
    assert (cfg.data.num_workers, cfg.seed) == (7, 5)  # the local file, and the command line above it
    assert debug.data.num_workers == 0  # debug= comes after the local file
    ignored = subprocess.run(["git", "check-ignore", "-q", "conf/local/default.yaml"], cwd=ROOT)
    kept = subprocess.run(["git", "check-ignore", "-q", "conf/local/README.md"], cwd=ROOT)
    assert (ignored.returncode, kept.returncode) == (0, 1)
