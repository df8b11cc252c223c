"""The image-folder DataModule on real Met paintings, and the Met default built through the crop stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from image_faults import grey16_png, rotated_jpeg
from PIL import Image

from data_modules.datamodule import ImageFolderDataModule
from data_modules.met import MetDataModule
from data_modules.sampler import ResumableShuffle

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(museum_paintings, tmp_path):
    """Five real paintings as jpg, png, webp and an upper-case .JPG, some in a subfolder, plus a stray text file."""
    root = tmp_path / "images"
    (root / "sub" / "deeper").mkdir(parents=True)
    names = ["a.jpg", "sub/b.png", "sub/deeper/c.webp", "d.JPG", "sub/e.jpeg"]
    for painting, name in zip(museum_paintings, names):
        Image.open(painting).convert("RGB").resize((40, 40)).save(root / name, quality=95)
    (root / "notes.txt").write_text("not an image")
    return root


def test_batches_are_crops_and_mirrors_in_minus_one_to_one(folder):
    dm = ImageFolderDataModule(folder, size=32, batch_size=2, num_workers=0)
    dm.setup("fit")
    assert dm.image_dir == folder and dm.size == 32 and len(dm.dataset) == 10  # 5 images + their mirrors
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1

    png = dm.dataset.files.index(folder / "sub" / "b.png")  # lossless, so the reference is exact
    reference = np.asarray(Image.open(folder / "sub" / "b.png").resize((32, 32), Image.Resampling.LANCZOS))
    reference = torch.from_numpy(reference.copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(dm.dataset[png], reference, atol=1e-6)
    assert torch.allclose(dm.dataset[png + 5], reference.flip(-1), atol=1e-6)

    no_flip = ImageFolderDataModule(folder, size=32, num_workers=0, flip=False)
    no_flip.setup()
    assert len(no_flip.dataset) == 5 and torch.allclose(no_flip.dataset[png], reference, atol=1e-6)


def test_order_is_seeded_sharded_across_ranks_and_resumable():
    def epoch(rank=0, world=1, seed=1, epoch=0, skip=0):
        sampler = ResumableShuffle(20, batch_size=3, seed=seed, rank=rank, world_size=world)
        sampler.resume(epoch * sampler.batches_per_epoch + skip)
        return list(sampler)

    assert epoch() == epoch() and epoch() != epoch(seed=2) and epoch() != epoch(epoch=1)
    assert sorted(epoch()) != epoch() and len(epoch()) == 18  # shuffled, whole batches only
    ranks = [epoch(rank=r, world=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 9 and not set(ranks[0]) & set(ranks[1])
    assert epoch(skip=2) == epoch()[6:]  # resumed after two batches: the rest of the same epoch
    assert epoch(rank=1, world=2, skip=1) == ranks[1][3:]
    sampler = ResumableShuffle(20, batch_size=3, seed=1)
    assert [list(sampler), list(sampler)] == [epoch(), epoch(epoch=1)]  # each pass is the next epoch
    with pytest.raises(ValueError, match="cannot fill one batch"):
        ResumableShuffle(5, batch_size=3, world_size=2)


def test_a_size_larger_than_the_images_is_an_error(folder):
    with pytest.raises(ValueError, match=r"data.size=64 but 5 of 5 images .* are smaller .* is 40x40"):
        ImageFolderDataModule(folder, size=64).setup()


def test_corrupt_file_is_skipped_with_a_warning(folder):
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    dm = ImageFolderDataModule(folder, size=16, batch_size=3, num_workers=0)
    dm.setup()
    broken = dm.dataset.files.index(folder / "sub" / "broken.jpg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        items = [dm.dataset[i] for i in range(len(dm.dataset))]
    assert all(x.shape == (3, 16, 16) for x in items)
    assert items[broken].abs().sum() > 0  # the next readable image stands in
    batches = list(ImageFolderDataModule(folder, size=16, batch_size=3, num_workers=1).train_dataloader())
    assert sum(len(b) for b in batches) == 12  # a full epoch (6 images + mirrors) through a worker, no crash


def test_16_bit_and_turned_images_are_read_upright_in_their_tones(museum_paintings, tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    expected = {"deep.png": grey16_png(museum_paintings[7], root / "deep.png", (32, 32))[..., None],
                "turned6.jpg": rotated_jpeg(museum_paintings[8], root / "turned6.jpg", (32, 32), 6),
                "turned8.jpg": rotated_jpeg(museum_paintings[9], root / "turned8.jpg", (32, 32), 8)}
    dm = ImageFolderDataModule(root, size=32, batch_size=1, num_workers=0, flip=False)
    dm.setup()
    for i, path in enumerate(dm.dataset.files):
        got = (dm.dataset[i] + 1) * 127.5
        reference = torch.from_numpy(expected[path.name].copy()).permute(2, 0, 1).float()
        assert got.shape == (3, 32, 32) and (got - reference).abs().max() <= 1.001, path.name


def test_image_above_the_pixel_limit_is_skipped_with_a_warning(folder, huge_png):
    (folder / "huge.png").write_bytes(huge_png.read_bytes())
    dm = ImageFolderDataModule(folder, size=32, batch_size=2, num_workers=0)
    dm.setup()  # reads headers only: the 30000x30000 image is not decoded
    huge = dm.dataset.files.index(folder / "huge.png")
    with pytest.warns(UserWarning, match=r"huge\.png \(.*900000000 pixels"):
        item = dm.dataset[huge]
    assert item.shape == (3, 32, 32)  # the next readable image stands in
    assert len(list(dm.train_dataloader())) == 6  # a full epoch: 6 files + mirrors, in batches of 2


def test_empty_or_missing_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(FileNotFoundError, match=str(path)):
            ImageFolderDataModule(path, size=16).setup()


class _CountBatches(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.shapes = []

    def training_step(self, batch, batch_idx):
        self.shapes.append(tuple(batch.shape))
        return (batch.mean() * self.weight) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_met_default_is_cropped_once_into_its_cache_and_trains(museum_dir, tmp_path):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("data/met", overrides=[f"data.cache_dir={tmp_path / 'met'}", "data.size=32",
                                              "data.batch_size=4", "data.num_workers=0", "data.crop_workers=2",
                                              "data.seed=0"])
    dm = instantiate(cfg.data)
    assert isinstance(dm, MetDataModule)
    model = _CountBatches()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert model.shapes == [(4, 3, 32, 32)] * 2
    assert dm.image_dir == tmp_path / "met" / "crops_32"
    paintings = sorted(museum_dir.glob("*.jpg"))
    crops = sorted(p.name for p in dm.image_dir.glob("*.jpg"))
    assert len(paintings) == 174 and len(crops) == 3 * 174  # no Met painting is square
    assert {c.rsplit("_", 1)[0] for c in crops} == {p.stem for p in paintings}

    stamp = {p: p.stat().st_mtime_ns for p in dm.image_dir.iterdir()}
    again = MetDataModule(cache_dir=tmp_path / "met", size=32, num_workers=0)
    again.setup()
    assert {p: p.stat().st_mtime_ns for p in dm.image_dir.iterdir()} == stamp  # cached: nothing rewritten
    assert len(again.dataset) == 2 * 522  # crops and their mirrors
