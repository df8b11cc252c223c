"""The FID callback in a real (tiny) Lightning run: when it measures, what it logs, and what it measures."""

import csv

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader

from magnet import build_generator
from magnet.metrics import InceptionFeatures, MetricSettings, folder_features, frechet_distance, generated_features
from magnet.training.callbacks.checkpoint import KimgCheckpoint
from magnet.training.callbacks.fid import FIDCallback

SIZE, BATCH, NUM_GEN = 32, 4, 6
FID = f"fid{NUM_GEN}_full"


class TinyGAN(pl.LightningModule):
    """Just the callback's contract: `g_ema` and `kimg`; one dummy parameter is trained."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.g_ema = build_generator(size=SIZE, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)
        self.g_ema.eval()
        self.weight = nn.Parameter(torch.zeros(1))
        self.kimg = 0.0

    def training_step(self, batch, batch_idx):
        self.kimg += len(batch) / 1000
        return (self.weight - batch.mean()).square().sum()

    def configure_optimizers(self):
        return torch.optim.SGD([self.weight], lr=0.1)


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory, museum_paintings):
    folder = tmp_path_factory.mktemp("real")
    for path in museum_paintings[:NUM_GEN]:
        with Image.open(path) as image:
            image.convert("RGB").save(folder / f"{path.stem}.png")  # non-square: the loader crops them
    return folder


def _fit(callback, tmp_path, max_steps, *others):
    logger = CSVLogger(tmp_path, name="run")
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor=f"val/{FID}", mode="min", every_n_train_steps=2)
    trainer = pl.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=logger, callbacks=[callback, best, *others], log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(TinyGAN(), DataLoader(torch.randn(64, 3, 4, 4), batch_size=BATCH))
    return trainer, logger, best


def test_callback_logs_fid_every_n_kimg_and_checkpoints_the_best(real_dir, tmp_path):
    # 2 batches of 4 images per evaluation; noise "const" so the (untrained) g_ema always gives one figure.
    settings = MetricSettings(names=[FID, f"kid{NUM_GEN}_full"], batch_size=4, noise_mode="const",
                              cache_dir=str(tmp_path / "cache"))
    callback = FIDCallback(every_kimg=2 * BATCH / 1000, data_dir=str(real_dir), settings=settings)
    kimg_files = KimgCheckpoint(tmp_path / "kimg", every_kimg=2 * BATCH / 1000, monitor=f"val/{FID}")
    trainer, logger, best = _fit(callback, tmp_path, 5, kimg_files)
    with open(logger.log_dir + "/metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get(f"val/{FID}")]
    assert [float(r["train/kimg"]) for r in rows] == [0.008, 0.016]  # after batches 2 and 4 of 5, with their kimg
    assert all(float(r[f"val/kid{NUM_GEN}_full"]) > 0 for r in rows)
    assert callback.next_nimg == 6 * BATCH

    inception = InceptionFeatures()
    real = folder_features(real_dir, inception, SIZE, tmp_path / "cache", progress=False)  # from the cache
    fake = generated_features(
        trainer.lightning_module.g_ema, {"inception": inception}, NUM_GEN, batch_size=4, noise_mode="const",
        progress=False,
    )["inception"]
    expected = frechet_distance(real, fake)
    assert [float(r[f"val/{FID}"]) for r in rows] == pytest.approx([expected, expected], rel=1e-5)
    assert float(best.best_model_score) == pytest.approx(expected, rel=1e-5)
    assert best.best_model_path.endswith(".ckpt")
    # the kimg checkpoints are scored by the figure measured at their kimg (FID runs first), the end's by the last
    assert list(kimg_files.best_k_models.values()) == pytest.approx([expected] * 3, rel=1e-5)
    assert kimg_files.best_model_path.endswith("kimg000000.008.ckpt")  # ties keep the first


def test_callback_without_real_images_fails_at_start(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        _fit(FIDCallback(every_kimg=1, settings={"names": ["fid4"]}), tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="every_kimg"):
        FIDCallback(every_kimg=0)
