"""W&B as its users read it, from real offline runs of the tiny training: every key against train/kimg,
the kimg checkpoints as artifacts (log_model all / true / false), a resume continuing its run, eval.py's
figures in that run, offline unless there is a key; and the speed figures in every logger."""

import csv
import json
import logging
from types import SimpleNamespace

import pytest
from train_config import compose_train
from wandb_records import offline_runs

from magnet.nn.checkpoint import read_checkpoint
from magnet.training.callbacks.progress import KimgProgressBar, duration, progress_text
from magnet.training.wandb_logger import KimgWandbLogger, wandb_mode
from train import train

# 4 batches of 4 images: checkpoints, sample grids and speed ticks at 8 and 16 images; the best checkpoint
# by train/loss_g (a figure every batch has, standing in for val/fid)
RUN = ["model.total_kimg=0.016", "callbacks.kimg_checkpoint.every_kimg=0.008", "callbacks.throughput.every_kimg=0.008",
       "callbacks.kimg_checkpoint.monitor=train/loss_g", "callbacks.kimg_checkpoint.keep=null"]
OURS = ("train/", "val/", "perf/", "samples", "search/", "eval/")


def _csv_rows(run):
    return list(csv.DictReader(open(next(run.glob("csv/*/metrics.csv")))))


def _tag(model) -> str:
    """The kimg alias of a model artifact (W&B keeps aliases as a set)."""
    (tag,) = [alias for alias in model.aliases if alias.startswith("kimg")]
    return tag


def _loss_g_at(rows, kimg: float) -> float:
    """train/loss_g of the batch that ended at `kimg`, as the CSV logger has it."""
    (row,) = [r for r in rows if r["train/loss_g"] and abs(float(r["train/kimg"]) - kimg) < 1e-6]
    return float(row["train/loss_g"])


@pytest.fixture(scope="module")
def first(tmp_path_factory, tiny_paintings):
    """A fresh training into CSV, TensorBoard and W&B, every checkpoint an artifact as it is written."""
    run = tmp_path_factory.mktemp("first") / "run"
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    progress_log = logging.getLogger("magnet.training.callbacks.progress")
    progress_log.addHandler(handler)
    progress_log.setLevel(logging.INFO)
    try:
        train(compose_train(run, tiny_paintings, *RUN, "logger=many_loggers", "logger.wandb.log_model=all"))
    finally:
        progress_log.removeHandler(handler)
    (wandb_run,) = offline_runs(run)
    return SimpleNamespace(folder=run, wandb=wandb_run, log=lines)


def test_every_key_is_plotted_against_kimg(first):
    run = first.wandb
    assert any(m.name == "train/kimg" for m in run.metrics)
    for key in ("train/loss_g", "perf/sec_per_kimg", "samples", "val/fid10k_full"):
        assert run.step_metric(key) == "train/kimg"  # Lightning's default would be trainer/global_step
    assert {"train/loss_d", "train/loss_g", "train/kimg", "perf/sec_per_kimg", "perf/img_per_sec",
            "samples/_type"} <= run.keys()
    ours = [row for row in run.rows if any(key.startswith(OURS) and key != "train/kimg" for key in row)]
    assert ours and all("train/kimg" in row for row in ours)  # each row carries its own x
    grids = [row["train/kimg"] for row in run.rows if row.get("samples/_type") == "image-file"]
    assert grids == [0, 0.008, 0.016]


def test_speed_is_logged_to_every_logger_and_printed_each_tick(first):
    ticks = [row for row in first.wandb.rows if "perf/sec_per_kimg" in row]
    assert [row["train/kimg"] for row in ticks] == [0.008, 0.016]
    for row in ticks:
        assert row["perf/sec_per_kimg"] > 0
        assert row["perf/img_per_sec"] * row["perf/sec_per_kimg"] == pytest.approx(1000)
    rows = [r for r in _csv_rows(first.folder) if r.get("perf/img_per_sec")]
    assert [float(r["train/kimg"]) for r in rows] == [0.008, 0.016] and all(float(r["perf/img_per_sec"]) > 0
                                                                            for r in rows)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = first.folder.glob("tensorboard/*/events.out.tfevents.*")
    board = EventAccumulator(str(events))
    board.Reload()
    assert {"perf/sec_per_kimg", "perf/img_per_sec"} <= set(board.Tags()["scalars"])
    assert len(first.log) == 2 and first.log[-1].startswith("kimg 0.016/0.016  sec/kimg ")
    assert "img/s" in first.log[-1] and first.log[-1].endswith("eta 0s")


def test_progress_text_and_bar_show_kimg_of_total_speed_and_eta():
    assert progress_text(1000.0, 25000, 6.0) == {"kimg": "1000.0/25000", "sec/kimg": "6.00", "img/s": "166.7",
                                                 "eta": "1d 16h 00m"}
    assert progress_text(0.004, 0.016, None) == {"kimg": "0.004/0.016"}  # before the first tick
    assert [duration(s) for s in (40, 750, 18120, 2 * 86400 + 3 * 3600 + 600)] == ["40s", "12m 30s", "5h 02m",
                                                                                   "2d 03h 10m"]
    trainer = SimpleNamespace(loggers=[], progress_bar_metrics={"train/kimg": 12.0, "train/loss_g": 0.7},
                              callback_metrics={"perf/sec_per_kimg": 3.0})
    module = SimpleNamespace(kimg=12.0, hparams=SimpleNamespace(total_kimg=24.0))
    assert KimgProgressBar().get_metrics(trainer, module) == {
        "kimg": "12.0/24", "sec/kimg": "3.00", "img/s": "333.3", "eta": "36s", "train/loss_g": 0.7}


def test_log_model_all_logs_each_checkpoint_as_written_named_by_run_and_kimg(first):
    run, checkpoints, rows = first.wandb, first.folder / "checkpoints", _csv_rows(first.folder)
    models = run.models()
    assert [m.name for m in models] == [f"model-{run.id}"] * 2
    scores = {_tag(m): json.loads(m.metadata)["score"] for m in models}
    assert scores == pytest.approx({tag: _loss_g_at(rows, kimg) for tag, kimg in [("kimg000000.008", 0.008),
                                                                                   ("kimg000000.016", 0.016)]})
    best = min(scores, key=scores.get)
    for model, tag in zip(models, ["kimg000000.008", "kimg000000.016"]):  # best so far, when logged
        assert set(model.aliases) == {tag, "latest", *(["best"] if tag == best or tag == "kimg000000.008" else [])}
        assert json.loads(model.metadata)["kimg"] == float(tag[4:])
        (entry,) = model.manifest.contents
        assert entry.path == "model.ckpt" and entry.size == (checkpoints / f"{tag}.ckpt").stat().st_size
    # the first was logged when written, before the batches after it
    kinds = [kind for kind, _ in run.stream]
    later = [i for i, (kind, row) in enumerate(run.stream) if kind == "history" and row["train/kimg"] > 0.0081]
    assert kinds.index("artifact") < later[0]
    assert read_checkpoint(checkpoints / "last.ckpt")["wandb_run_id"] == run.id


def test_resume_continues_the_run_and_log_model_true_logs_when_training_ends(first, tiny_paintings, tmp_path):
    resumed_from = first.folder / "checkpoints" / "kimg000000.008.ckpt"
    train(compose_train(tmp_path, tiny_paintings, *RUN, "logger=wandb", "logger.wandb.log_model=true",
                        f"ckpt_path={resumed_from}"))
    (run,) = offline_runs(tmp_path)
    assert run.id == first.wandb.id and run.resumed
    assert [row["train/kimg"] for row in run.rows if "train/loss_g" in row] == pytest.approx([0.012, 0.016])
    last_row = max(i for i, (kind, _) in enumerate(run.stream) if kind == "history")
    assert all(i > last_row for i, (kind, _) in enumerate(run.stream) if kind == "artifact")  # at the end
    models = {_tag(m): m for m in run.models()}
    assert models["kimg000000.016"].name == f"model-{run.id}" and "latest" in models["kimg000000.016"].aliases
    # the resumed training is exact, so its checkpoint scores what the first run's did
    first_scores = {_tag(m): json.loads(m.metadata)["score"] for m in first.wandb.models()}
    assert json.loads(models["kimg000000.016"].metadata)["score"] == pytest.approx(first_scores["kimg000000.016"])
    best = [tag for tag, m in models.items() if "best" in m.aliases]
    assert best == [min(first_scores, key=first_scores.get)]


def test_without_log_model_no_artifact_and_a_given_run_id(tiny_paintings, tmp_path):
    train(compose_train(tmp_path, tiny_paintings, "model.total_kimg=0.004", "logger=wandb",
                        "logger.wandb.id=given-id"))
    (run,) = offline_runs(tmp_path)
    assert run.id == "given-id" and run.models() == [] and "train/loss_g" in run.keys() and run.exit_code == 0


def test_a_failed_training_closes_its_run_marked_failed(tiny_paintings, tmp_path):
    with pytest.raises(FloatingPointError):
        train(compose_train(tmp_path, tiny_paintings, "model.total_kimg=0.016", "model.lr=1e30", "logger=wandb"))
    (run,) = offline_runs(tmp_path)
    assert run.exit_code == 1
    import wandb

    assert wandb.run is None  # the next job of a sweep starts its own run


def test_eval_logs_its_figures_into_the_checkpoints_run(first, tiny_paintings, tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from train_config import CONF

    import eval as eval_script

    # the figures themselves are test_metrics.py's; here, where they go
    figures = {"fid4_full": 12.5, "kid4": 0.25, "kid4_std": 0.125, "num_gen": 4, "size": 32, "seed": 0}
    monkeypatch.setattr(eval_script, "evaluate", lambda *args: dict(figures))
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("eval", overrides=[
            f"ckpt_path={first.folder / 'checkpoints' / 'last.ckpt'}", f"data_dir={tiny_paintings}",
            "metrics.names=[fid4_full,kid4]", f"output_dir={tmp_path}", "device=cpu", "logger=wandb"])
    assert json.loads(eval_script.run_eval(cfg).read_text())["fid4_full"] == 12.5
    (run,) = offline_runs(tmp_path)
    assert run.id == first.wandb.id  # the training run, continued
    (row,) = [row for row in run.rows if any(key.startswith("eval/") for key in row)]
    logged = {"eval/fid4_full": 12.5, "eval/kid4": 0.25, "eval/kid4_std": 0.125}
    assert {k: v for k, v in row.items() if k.startswith("eval/")} == logged and row["train/kimg"] == 0.016
    assert {k: v for k, v in run.summary.items() if k.startswith("eval/")} == logged


def test_offline_unless_a_key_or_told(monkeypatch, tmp_path, tiny_paintings):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert [wandb_mode(None), wandb_mode(True), wandb_mode(False)] == ["offline", "offline", "online"]
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert [wandb_mode(None), wandb_mode(True), wandb_mode(False)] == ["online", "offline", "online"]
    # the config's logger resolves it the same way (built, never started: no run is made here)
    for overrides, mode in [([], "online"), (["logger.wandb.offline=true"], "offline")]:
        cfg = compose_train(tmp_path, tiny_paintings, "logger=wandb", *overrides)
        import hydra

        logger = hydra.utils.instantiate(cfg.logger.wandb)
        assert isinstance(logger, KimgWandbLogger) and logger._wandb_init["mode"] == mode
