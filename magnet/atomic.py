"""Atomic file writes: a reader (or a resumed run after a kill) sees the old file or the new one, never half.

No heavy imports: the data pipeline's worker processes use it too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write to; renamed over `path` when the block succeeds.

    The temporary name keeps the suffix (`.x.ab12cd.tmp.png`), so writers that infer the format still
    work; on an error it is removed and `path` is left as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
