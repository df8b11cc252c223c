"""Atomic writes: the old file or the new one, never half of one, and no temporary left behind."""

import pytest
from PIL import Image

from magnet.atomic import atomic_path


def test_a_write_replaces_the_file_only_when_it_succeeds(tmp_path):
    path = tmp_path / "deep" / "x.txt"
    with atomic_path(path) as tmp:
        tmp.write_text("first")
        assert not path.exists() and tmp.parent == path.parent
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "first" and sorted(p.name for p in path.parent.iterdir()) == ["x.txt"]


def test_the_temporary_keeps_the_suffix_that_picks_the_format(tmp_path):
    with atomic_path(tmp_path / "crop.png") as tmp:
        Image.new("RGB", (2, 2)).save(tmp)  # PIL infers PNG from the name
    with Image.open(tmp_path / "crop.png") as image:
        assert image.format == "PNG"
