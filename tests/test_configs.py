"""Every experiment composes and builds its model, so a typo in a config fails here and not on a GPU."""

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from train_config import CONF

from magnet.search import Screen

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds(experiment):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.model.network.size == cfg.data.size
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    assert model.G.size == cfg.data.size and model.config.arch in ("swagan", "stylegan2")
    assert model.augment.mode == "adaptive"


def test_anchor_values_of_the_gpu_experiments():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=swagan512"], return_hydra_config=True)
    batch, size = cfg.data.batch_size, cfg.data.size
    assert batch == min(4096 // size, 32)  # NVlabs cfg=auto at one GPU
    assert cfg.model.r1_gamma == pytest.approx(0.0002 * size**2 / batch)
    assert cfg.model.network.channel_multiplier == 2 and cfg.model.network.arch == "swagan"


def test_fid_callback_and_eval_share_the_metrics_group():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        train = compose("train", overrides=["callbacks=with_fid", "callbacks.fid.settings.names=[kid50k_full]"])
        evaluation = compose("eval", overrides=["ckpt_path=g.pt", "data_dir=images"])
    callback = hydra.utils.instantiate(train.callbacks.fid, _convert_="all")
    assert [spec.name for spec in callback.suite.specs] == ["kid50k_full"]
    assert train.callbacks.best_fid.monitor == "val/kid50k_full"
    assert set(train.callbacks.fid.settings) == set(evaluation.metrics)  # one settings object, one yaml group
    assert evaluation.metrics.clip == train.clip


def test_one_precision_setting_reaches_generate_eval_fid_and_the_search_preview():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        over = ["inference.precision=bf16"]
        train = compose("train", overrides=[*over, "callbacks=[default,fid,search_preview]",
                                            "callbacks.search_preview.screen.keep=8"])
        generate = compose("generate", overrides=over)
        evaluation = compose("eval", overrides=[*over, "ckpt_path=g.pt", "data_dir=images"])
        default = compose("generate")
    assert default.search.precision == "auto" and dict(default.search.screen) == {"preview_size": 128, "keep": 20}
    assert generate.search.precision == evaluation.metrics.precision == "bf16"
    assert train.callbacks.fid.settings.precision == train.callbacks.search_preview.precision == "bf16"
    preview = hydra.utils.instantiate(train.callbacks.search_preview, _convert_="all")
    assert (preview.precision, preview.screen) == ("bf16", Screen(preview_size=128, keep=8))


def test_make_run_is_bounded_in_time_and_builds_at_32px():
    import torch
    from hydra.core.hydra_config import HydraConfig
    from pytorch_lightning.callbacks import Timer

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=met_cpu"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, _convert_="all")
    (timer,) = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
    assert 9 * 60 <= timer._duration <= 11 * 60  # trainer.max_time, in seconds
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    with trainer.precision_plugin.forward_context():
        images = model.G(torch.randn(2, cfg.model.network.style_dim))
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
