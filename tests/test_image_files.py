"""The shared image reader on real paintings, against numpy: bit depths, EXIF turns, transparency, pixel limit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from image_faults import UPRIGHT, painting_pixels, png16, rotated_jpeg
from PIL import Image

from magnet import image_files
from magnet.image_files import open_image, read_rgb

REPO = Path(__file__).resolve().parents[1]


def _tones(museum_paintings, mode):
    """A painting at 40x30 as values in [0, 1] (grey or RGB), its first row replaced by a full 0..1 ramp."""
    t = painting_pixels(museum_paintings[3], (40, 30), mode) / 255
    t[0] = np.linspace(0, 1, 40)[:, None] if t.ndim == 3 else np.linspace(0, 1, 40)
    return t


@pytest.mark.parametrize("kind", ["I;16 png", "I;16B tiff", "I pgm", "I 32-bit tiff", "F tiff", "RGB 16-bit png"])
def test_wide_images_are_scaled_to_8_bits_by_their_bit_depth(museum_paintings, tmp_path, kind):
    t = _tones(museum_paintings, "RGB" if kind.startswith("RGB") else "L")
    path = tmp_path / f"image.{kind.rsplit(' ', 1)[1]}"
    if kind == "I;16 png":
        Image.fromarray(np.round(t * 65535).astype(np.uint16)).save(path)
    elif kind == "I;16B tiff":
        Image.fromarray(np.round(t * 65535).astype(">u2")).save(path)
    elif kind == "I pgm":  # PIL opens 16-bit PGM (and older Pillows 16-bit PNG) as 32-bit I
        Image.fromarray(np.round(t * 65535).astype(np.uint16)).save(path)
    elif kind == "I 32-bit tiff":
        Image.fromarray(np.round(t * (2**31 - 1)).astype(np.int32)).save(path)
    elif kind == "F tiff":
        Image.fromarray(t.astype(np.float32)).save(path)
    else:
        png16(path, np.round(t * 65535).astype(np.uint16))
    with Image.open(path) as opened:
        assert opened.mode == kind.split()[0]  # the mode this case is meant to cover
    got = np.asarray(read_rgb(path)).astype(int)
    expected = np.round(t * 255)
    expected = expected if expected.ndim == 3 else expected[..., None].repeat(3, axis=2)
    assert got.shape == (30, 40, 3)
    assert np.abs(got - expected).max() <= 1
    assert got[0, 0].tolist() == [0] * 3 and got[0, -1].tolist() == [255] * 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(museum_paintings, tmp_path, orientation):
    upright = rotated_jpeg(museum_paintings[1], tmp_path / "photo.jpg", (40, 24), orientation)
    with open_image(tmp_path / "photo.jpg") as opened:
        assert image_files.upright_size(opened) == (upright.shape[1], upright.shape[0])
    np.testing.assert_array_equal(np.asarray(read_rgb(tmp_path / "photo.jpg")), upright)


def test_bit_depth_is_read_before_the_image_is_turned(museum_paintings, tmp_path):
    """A turned 32-bit TIFF: its BitsPerSample tag, lost by turning, still sets the scale."""
    grey = painting_pixels(museum_paintings[2], (40, 24), "L")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.round(grey / 255 * (2**31 - 1)).astype(np.int32)).save(tmp_path / "turned.tif", exif=exif)
    got = np.asarray(read_rgb(tmp_path / "turned.tif")).astype(int)
    assert np.abs(got - np.rot90(grey, -1)[..., None]).max() <= 1


def test_transparency_is_laid_over_white(museum_paintings, tmp_path):
    rgb = painting_pixels(museum_paintings[4], (32, 24))
    alpha = np.linspace(0, 255, 32 * 24).reshape(24, 32).round().astype(np.uint8)
    over_white = rgb * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    grey = painting_pixels(museum_paintings[4], (32, 24), "L")
    Image.fromarray(np.dstack([grey, alpha])).save(tmp_path / "la.png")
    grey_over_white = grey * (alpha / 255) + 255 * (1 - alpha / 255)
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "palette.png", transparency=0)
    indices, colours = np.asarray(palette), np.asarray(palette.getpalette()).reshape(-1, 3)
    palette_over_white = np.where((indices == 0)[..., None], 255, colours[indices])

    assert np.abs(np.asarray(read_rgb(tmp_path / "rgba.png")) - over_white).max() <= 1
    assert np.abs(np.asarray(read_rgb(tmp_path / "la.png")) - grey_over_white[..., None]).max() <= 1
    np.testing.assert_array_equal(np.asarray(read_rgb(tmp_path / "palette.png")), palette_over_white)


def test_an_image_above_the_pixel_limit_is_refused_from_its_header(huge_png, museum_paintings, tmp_path,
                                                                    monkeypatch):
    start = time.perf_counter()
    with pytest.raises(Image.DecompressionBombError, match="900000000 pixels"):
        read_rgb(huge_png)
    assert time.perf_counter() - start < 1  # decoding its 0.9 GB would take seconds

    # Our limit holds where Pillow's check is off (some libraries set MAX_IMAGE_PIXELS = None)
    Image.fromarray(painting_pixels(museum_paintings[0], (40, 30))).save(tmp_path / "painting.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(image_files, "MAX_PIXELS", 40 * 30)
    assert read_rgb(tmp_path / "painting.png").size == (40, 30)
    monkeypatch.setattr(image_files, "MAX_PIXELS", 40 * 30 - 1)
    with pytest.raises(Image.DecompressionBombError, match=r"40x30 = 1200 pixels exceeds the limit of 1199"):
        read_rgb(tmp_path / "painting.png")


def test_the_upright_table_follows_the_exif_standard():
    """The numpy table itself: orientations 5-8 swap the sides, and each maps a corner as the EXIF standard says."""
    a = np.arange(6).reshape(2, 3)  # top-left 0, top-right 2, bottom-left 3
    top_left = {o: int(UPRIGHT[o](a)[0, 0]) for o in UPRIGHT}
    assert top_left == {1: 0, 2: 2, 3: 5, 4: 3, 5: 0, 6: 3, 7: 5, 8: 2}
    assert all(UPRIGHT[o](a).shape == ((3, 2) if o >= 5 else (2, 3)) for o in UPRIGHT)


def test_the_reader_and_the_crop_stage_load_without_torch():
    code = "import sys, data_modules.crop; assert not [m for m in sys.modules if m.startswith('torch')]"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_training_and_fid_read_the_same_files_of_a_folder(tmp_path):
    """One listing: FID's real set is the training set (hidden files, other suffixes and folders alike)."""
    from data_modules.datamodule import ImageFolderDataModule
    from magnet.metrics.stats import real_images

    (tmp_path / "sub").mkdir()
    for name in ("a.png", "b.bmp", "sub/c.JPG", ".hidden.png", "d.webp"):
        Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / name, format="PNG" if "bmp" not in name else "BMP")
    (tmp_path / "notes.txt").write_text("not an image")
    datamodule = ImageFolderDataModule(tmp_path, size=16, batch_size=2, num_workers=0, flip=False)
    datamodule.setup()
    expected = [tmp_path / n for n in ("a.png", "b.bmp", "d.webp", "sub/c.JPG")]
    assert datamodule.dataset.files == real_images(tmp_path) == expected
