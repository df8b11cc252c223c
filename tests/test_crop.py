"""Square crops of real Met paintings, checked against numpy slicing and PIL's own LANCZOS resize."""

from __future__ import annotations

import numpy as np
import pytest
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
        expected |= {f"{painting.stem}_{n}.jpg" for n in (("lft", "ctr", "rgt") if w > h else ("top", "ctr", "bot"))}
    assert {p.name for p in out.iterdir()} == expected
    assert all(Image.open(out / name).size == (32, 32) for name in expected)

    again = crop_folder(src, out, size=32, min_side=64, workers=2)
    assert (again.crops_written, again.crops_existing) == (0, 12)


def test_empty_source_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        crop_folder(tmp_path, tmp_path / "out", size=32, min_side=8)
