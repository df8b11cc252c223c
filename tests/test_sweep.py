"""A Hydra multirun from the command line: one folder per job, and a failed job does not end the sweep."""

import subprocess
import sys
from pathlib import Path

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
