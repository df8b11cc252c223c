"""Square crops of real Met paintings, checked against numpy slicing and PIL's own LANCZOS resize."""

from __future__ import annotations

import numpy as np
import pytest
from image_faults import grey16_png, painting_pixels, rotated_jpeg
from PIL import Image

from data_modules.crop import crop_folder, crop_painting


def small_copy(painting, path, width):
    """A PNG copy of a painting `width` px wide (lossless, so crops can be compared pixel for pixel)."""
    image = Image.open(painting).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.save(path)
    return np.asarray(image)


def crop_args(out_dir, size, min_side=8):
    return dict(out_dir=out_dir, size=size, min_side=min_side, jpeg_quality=95, overwrite=False)


@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_three_crops_are_the_start_centre_and_end_squares(museum_paintings, tmp_path, orientation):
    painting = next(p for p in museum_paintings if (Image.open(p).width > Image.open(p).height)
                    == (orientation == "landscape"))
    source = tmp_path / "src" / "painting.png"
    source.parent.mkdir()
    pixels = small_copy(painting, source, width=61)
    h, w = pixels.shape[:2]
    side = min(h, w)
    out = tmp_path / "out"
    out.mkdir()

    result = crop_painting(source, **crop_args(out, size=side))  # same size: the crop itself, unfiltered
    names = ("lft", "ctr", "rgt") if w > h else ("top", "ctr", "bot")
    assert [p.name for p in result.written] == [f"painting_{n}.png" for n in names]
    starts = (0, (max(h, w) - side) // 2, max(h, w) - side)
    for path, start in zip(result.written, starts):
        expected = pixels[:, start:start + side] if w > h else pixels[start:start + side, :]
        assert np.array_equal(np.asarray(Image.open(path)), expected)

    resized = crop_painting(source, **{**crop_args(out, size=16), "overwrite": True})
    centre = pixels[:, starts[1]:starts[1] + side] if w > h else pixels[starts[1]:starts[1] + side, :]
    lanczos = np.asarray(Image.fromarray(centre).resize((16, 16), Image.Resampling.LANCZOS))
    bicubic = np.asarray(Image.fromarray(centre).resize((16, 16), Image.Resampling.BICUBIC))
    got = np.asarray(Image.open(resized.written[1]))
    assert got.shape == (16, 16, 3)
    assert np.abs(got.astype(int) - lanczos).max() <= 1 and not np.array_equal(lanczos, bicubic)


def test_square_painting_gives_one_resized_crop(museum_paintings, tmp_path):
    source = tmp_path / "square.png"
    Image.open(museum_paintings[0]).convert("RGB").resize((40, 40)).save(source)
    result = crop_painting(source, **crop_args(tmp_path, size=24))
    assert [p.name for p in result.written] == ["square_ctr.png"]
    assert Image.open(result.written[0]).size == (24, 24)  # MAGnet left square paintings unresized


def test_modes_become_rgb_and_transparency_becomes_white(museum_paintings, tmp_path):
    base = Image.open(museum_paintings[0]).convert("RGB").resize((48, 32))
    rgba = base.convert("RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))  # fully transparent corner
    variants = {"grey.png": base.convert("L"), "palette.png": base.convert("P"), "cmyk.jpg": base.convert("CMYK"),
                "rgba.png": rgba, "greyalpha.png": base.convert("LA")}
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for name, image in variants.items():
        image.save(src / name)
    summary = crop_folder(src, out, size=32, min_side=8, workers=1)
    assert summary.crops_written == 15 and not summary.skipped
    for crop in out.iterdir():
        assert Image.open(crop).mode == "RGB" and Image.open(crop).size == (32, 32)
    assert Image.open(out / "rgba_lft.png").getpixel((0, 0)) == (255, 255, 255)


def test_folder_over_processes_skips_bad_files_and_resumes(museum_paintings, tmp_path, caplog):
    src, out = tmp_path / "paintings", tmp_path / "crops"
    (src / "nested").mkdir(parents=True)
    paintings = museum_paintings[:4]
    for painting in paintings:
        (src / "nested" / painting.name).write_bytes(painting.read_bytes())
    truncated = paintings[0].read_bytes()
    (src / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    (src / "corrupt.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    Image.new("RGB", (20, 30), "red").save(src / "tiny.png")

    summary = crop_folder(src, out, size=32, min_side=64, workers=2)
    assert summary.paintings == 7 and summary.crops_written == 12
    reasons = {path.name: reason for path, reason in summary.skipped}
    assert set(reasons) == {"truncated.jpg", "corrupt.jpg", "tiny.png"}
    assert "too small" in reasons["tiny.png"] and "unreadable" in reasons["corrupt.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert all(name in caplog.text for name in reasons)
    expected = set()
    for painting in paintings:
        w, h = Image.open(painting).size
        positions = ("lft", "ctr", "rgt") if w > h else ("top", "ctr", "bot")
        expected |= {f"nested/{painting.stem}_{n}.jpg" for n in positions}  # in the painting's sub-folder
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected
    assert all(Image.open(out / name).size == (32, 32) for name in expected)

    again = crop_folder(src, out, size=32, min_side=64, workers=2)
    assert (again.crops_written, again.crops_existing) == (0, 12)


def test_empty_source_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        crop_folder(tmp_path, tmp_path / "out", size=32, min_side=8)


def test_every_painting_keeps_its_own_crops_named_the_same_on_every_run(museum_paintings, tmp_path):
    """One stem in two sub-folders, beside another suffix or its upper case, or with a suffix inside it."""
    centre_crops = {"a/x.jpg": "a/x_ctr.jpg", "b/x.jpg": "b/x_ctr.jpg", "a/x.png": "a/x_ctr.png",
                    "x.jpg": "x_ctr.jpg", "x.JPG": "x_ctr.JPG", "x.png": "x_ctr.png", "x.tif": "x_ctr.tif.png",
                    "x.tif.png": "x.tif_ctr.png"}
    src, out = tmp_path / "src", tmp_path / "out"
    centres = {}
    for painting, name in zip(museum_paintings[10:], centre_crops):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(painting_pixels(painting, (48, 32))).save(src / name)
        with Image.open(src / name) as saved:
            centres[name] = np.asarray(saved.convert("RGB"))[:, 8:40].astype(int)

    summary = crop_folder(src, out, size=32, min_side=8, workers=1)
    assert (summary.crops_written, summary.skipped) == (24, [])
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {crop.replace("_ctr", f"_{position}") for crop in centre_crops.values()
                       for position in ("lft", "ctr", "rgt")}
    for name, crop_name in centre_crops.items():  # each crop is of its own painting, the nearest of all eight
        crop = np.asarray(Image.open(out / crop_name)).astype(int)
        distances = {other: np.abs(crop - centre).mean() for other, centre in centres.items()}
        assert min(distances, key=distances.get) == name and distances[name] < 3

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = crop_folder(src, out, size=32, min_side=8, workers=1)
    assert (again.crops_written, again.crops_existing) == (0, 24)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps  # same names, nothing cropped again


def test_16_bit_painting_keeps_its_tones(museum_paintings, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    grey = grey16_png(museum_paintings[5], src / "deep.png", (48, 32)).astype(int)
    assert crop_folder(src, out, size=32, min_side=8, workers=1).crops_written == 3
    for position, start in (("lft", 0), ("ctr", 8), ("rgt", 16)):
        crop = np.asarray(Image.open(out / f"deep_{position}.png")).astype(int)
        assert crop.shape == (32, 32, 3)
        assert np.abs(crop - grey[:, start:start + 32, None]).max() <= 1  # not near-white


def test_photo_stored_on_its_side_is_cropped_upright(museum_paintings, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    upright = rotated_jpeg(museum_paintings[6], src / "photo.jpg", (48, 32), orientation=8).astype(int)
    assert upright.shape == (48, 32, 3)  # stored landscape, shown portrait
    assert crop_folder(src, out, size=32, min_side=8, workers=1).crops_written == 3
    for position, start in (("top", 0), ("ctr", 8), ("bot", 16)):
        crop = np.asarray(Image.open(out / f"photo_{position}.jpg")).astype(int)
        assert np.abs(crop - upright[start:start + 32]).mean() < 3  # JPEG saved again: close, not equal


def test_painting_above_the_pixel_limit_is_skipped_with_its_reason(huge_png, museum_paintings, tmp_path, caplog):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "huge.png").write_bytes(huge_png.read_bytes())
    (src / "painting.jpg").write_bytes(museum_paintings[0].read_bytes())
    summary = crop_folder(src, out, size=32, min_side=8, workers=1)
    assert summary.crops_written == 3
    [(path, reason)] = summary.skipped
    assert path.name == "huge.png" and reason.startswith("too large") and "900000000 pixels" in reason
    assert "huge.png" in caplog.text
