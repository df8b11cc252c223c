"""The scrape manifest (one CSV row per painting, written atomically) and safe file names."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from data_modules.files import atomic_write_csv, read_csv

_UNSAFE = re.compile(r"[^\w]+")  # anything but unicode letters, digits and "_" becomes one "-"


@dataclass(frozen=True)
class PaintingRecord:
    """One manifest row; `file` is relative to the images folder (works showing one image share it)."""

    artist: str
    title: str
    year: str
    movement: str
    page_url: str
    source_url: str
    license: str
    file: str
    sha256: str


MANIFEST_FIELDS = [f.name for f in fields(PaintingRecord)]


def name_tag(key: str) -> str:
    """How every `safe_stem` of `key` ends (after a "_"): a short hash, so a file can be found by key alone."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def safe_stem(artist: str, title: str, key: str, max_bytes: int = 120) -> str:
    """A file stem from remote names: no separators, dots or control characters, bounded, unique per `key`.

    The hash of `key` (the image's source URL) keeps two "Untitled" works apart and gives an image the
    same name on every run, so an interrupted scrape finds its finished files again.
    """

    def slug(text: str) -> str:
        text = unicodedata.normalize("NFKC", text).lower()
        return _UNSAFE.sub("-", text).strip("-_")

    tag = name_tag(key)
    stem = "_".join(part for part in (slug(artist), slug(title)) if part) or "untitled"
    stem = stem.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").strip("-_")
    return f"{stem}_{tag}"


class Manifest:
    """Thread-safe set of records keyed by page URL; `save` rewrites the CSV atomically, at most every few s."""

    def __init__(self, path: Path, save_every_s: float = 5.0):
        self.path = Path(path)
        self.save_every_s = save_every_s
        self._records = {row["page_url"]: PaintingRecord(**row) for row in read_csv(self.path)}
        self._lock = threading.Lock()
        self._saved_at = time.monotonic()

    def __contains__(self, page_url: str) -> bool:
        with self._lock:
            return page_url in self._records

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def get(self, page_url: str) -> PaintingRecord | None:
        with self._lock:
            return self._records.get(page_url)

    def records(self) -> list[PaintingRecord]:
        with self._lock:
            return list(self._records.values())

    def add(self, record: PaintingRecord) -> None:
        with self._lock:
            self._records[record.page_url] = record
            due = time.monotonic() - self._saved_at >= self.save_every_s
        if due:
            self.save()

    def save(self) -> Path:
        with self._lock:
            rows = [asdict(r) for r in sorted(self._records.values(), key=lambda r: (r.file, r.page_url))]
            atomic_write_csv(self.path, MANIFEST_FIELDS, rows)
            self._saved_at = time.monotonic()
        return self.path
