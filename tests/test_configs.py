"""Every experiment composes and builds its model, so a typo in a config fails here and not on a GPU."""

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from train_config import CONF

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
