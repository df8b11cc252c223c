"""A Hydra multirun from the command line: one folder per job, and a failed job does not end the sweep."""

import subprocess
import sys
from pathlib import Path

import pytest
from train_config import TINY

ROOT = Path(__file__).resolve().parents[1]


def test_multirun_isolates_jobs_and_survives_a_failure(tmp_path, tiny_paintings):
    overrides = [*TINY, f"data.image_dir={tiny_paintings}", f"paths.log_dir={tmp_path}",
                 "model.total_kimg=0.008", "model.lr=0.002,-1.0"]  # the second job's lr is invalid
    done = subprocess.run([sys.executable, "train.py", "-m", *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert (sweep / "0" / "checkpoints" / "last.ckpt").is_file()
    assert not (sweep / "1" / "checkpoints").exists()
    assert "model.lr=-1.0: must be a number > 0" in (sweep / "1" / "train.log").read_text()


def test_optuna_search_config_composes():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from train_config import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.optimized_metric == "val/fid10k_full"
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert set(cfg.hydra.sweeper.params) == {"model.r1_gamma", "model.lr", "model.style_mixing"}


@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_in_its_own_process(tmp_path, tiny_paintings):
    overrides = [*TINY, f"data.image_dir={tiny_paintings}", f"paths.log_dir={tmp_path}", "model.total_kimg=0.004",
                 "~callbacks.samples", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "seed=1,2"]
    done = subprocess.run([sys.executable, "train.py", "-m", *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    for job, seed in (("0", 1), ("1", 2)):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert f"seed={seed}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
    outputs = list(sweep.glob(".submitit/*/*_0_log.out"))  # submitit's own record: one process per job
    assert len(outputs) == 2


def test_slurm_launcher_submits_our_resources(tmp_path, monkeypatch):
    """Through the real plugin up to sbatch, which a stand-in records: partition, GPUs, time and memory."""
    import os

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from submitit.core.utils import FailedJobError
    from train_config import CONF

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sbatch", f'cp "$1" {tmp_path}/submitted.sh\necho held >&2\nexit 1'), ("srun", "exit 1")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}",
                                 "hydra.job.name=train"])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    with pytest.raises(FailedJobError, match="held"):  # the stand-in keeps the job script and submits nothing
        launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0)
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1", "#SBATCH --time=1440",
                 "#SBATCH --mem=64GB", "#SBATCH --cpus-per-task=8", "#SBATCH --array=0-1%2"):
        assert line in script, script


def test_optuna_sweep_records_each_trials_metric_in_a_shared_study(tmp_path, tiny_paintings):
    """Two trials through the real sweeper, stored in sqlite as a study shared across machines would be."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    overrides = [*TINY, f"data.image_dir={tiny_paintings}", f"paths.log_dir={tmp_path}", "model.total_kimg=0.004",
                 "~callbacks.samples", "hparams_search=optuna", "optimized_metric=train/loss_d",
                 "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}"]
    done = subprocess.run([sys.executable, "train.py", "-m", *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = optuna.load_study(study_name="magnet", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(0 < t.value < 10 and 0.1 <= t.params["model.r1_gamma"] <= 100 for t in trials)
    assert trials[0].params != trials[1].params
