"""Scrape public-domain paintings of modern artists from WikiArt into a folder of images plus a manifest.

Three phases over a pool of worker threads: artist index per letter -> artists of a modern movement within
the life-date bounds -> their public-domain works, downloaded at full size. The site is read through its HTML
pages or its JSON endpoints (`source`, see `SOURCES`). A failure of any kind, and a URL robots.txt forbids,
is recorded and counted for its own item only; a rerun skips what the manifest (or a finished file) already
holds. An image is downloaded once, however many painting pages link to it: each gets a row naming one file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.progress import Progress

from data_modules.files import atomic_write_csv, sha256_file
from data_modules.scrape.client import FetchError, HttpClient
from data_modules.scrape.manifest import Manifest, PaintingRecord, name_tag, safe_stem
from data_modules.scrape.robots import Disallowed
from data_modules.scrape.wikiart import ArtistEntry, WikiArtSite, WorkEntry
from data_modules.scrape.wikiart_json import WikiArtJson
from magnet.checks import check_choice, check_float, check_int, check_text, check_texts
from magnet.errors import ConfigError, UserError, config_key

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}  # PIL format -> file extension kept
SOURCES = {"html": WikiArtSite, "json": WikiArtJson}  # how the site is read: its pages or its JSON endpoints


@dataclass
class ScrapeSummary:
    """Counts of a scrape run; `failures` lists (url, reason) of everything that failed or was disallowed."""

    artists_found: int = 0
    artists_kept: int = 0
    found: int = 0  # works listed by the kept artists
    kept: int = 0  # public domain, with an image
    downloaded: int = 0  # fetched in this run
    skipped: int = 0  # already there from an earlier run
    shared: int = 0  # their image was already there for another work: a row naming the same file
    failed: int = 0  # items that failed, and listing pages that listed nothing
    disallowed: int = 0  # URLs robots.txt forbids: never requested
    failures: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"artists {self.artists_kept}/{self.artists_found} kept; paintings: found {self.found}, "
            f"kept {self.kept}, downloaded {self.downloaded}, skipped {self.skipped}, shared {self.shared}, "
            f"failed {self.failed}, disallowed by robots.txt {self.disallowed}"
        )


@dataclass(frozen=True)
class _Artist:
    entry: ArtistEntry
    movements: tuple[str, ...] | None  # None: the source tells the movement per painting (its style)


@dataclass
class _Image:
    """One source URL's image: set `done` once its `file` is there (None if it could not be had)."""

    done: threading.Event = field(default_factory=threading.Event)
    file: str | None = None
    sha256: str = ""


class _Scraper:
    def __init__(self, out_dir: Path, site: WikiArtSite | WikiArtJson, client: HttpClient, movements: Sequence[str],
                 licenses: Sequence[str], born_after: int, died_before: int, max_bytes: int,
                 workers: int, manifest_save_every_s: float):
        self.images_dir = out_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.failures_path = out_dir / "failures.csv"
        self.site, self.client = site, client
        self.movements = [m.lower() for m in movements]
        self.licenses = [x.lower() for x in licenses]
        self.born_after, self.died_before = born_after, died_before
        self.max_bytes, self.workers = max_bytes, workers
        self.manifest = Manifest(out_dir / "manifest.csv", save_every_s=manifest_save_every_s)
        self.summary = ScrapeSummary()
        self._lock = threading.Lock()
        self._images: dict[str, _Image] = {}  # source URL -> its image, claimed by the first work to need it
        for record in self.manifest.records():
            if (self.images_dir / record.file).exists():
                self._images[record.source_url] = image = _Image(file=record.file, sha256=record.sha256)
                image.done.set()

    def run(self, letters: Iterable[str]) -> ScrapeSummary:
        for leftover in self.images_dir.glob(".*.part"):  # downloads cut off by a killed run
            leftover.unlink()
        pool = ThreadPoolExecutor(self.workers)
        try:
            with Progress() as progress:
                indexes = self._map(pool, progress, "artist index", self._read_index, list(letters),
                                    self.site.index_url, [])
                artists = {a.url: a for index in indexes for a in index}
                self.summary.artists_found = len(artists)
                alive = [a for a in artists.values() if self._may_keep(a)]
                modern = [a for a in self._map(pool, progress, "artists", self._read_artist, alive,
                                               lambda a: a.url) if a]
                self.summary.artists_kept = len(modern)
                works = self._map(pool, progress, "works lists", self._read_works, modern,
                                  lambda a: self.site.works_url(a.entry.url), [])
                jobs = {w.url: (w, a) for a, listed in zip(modern, works) for w in listed}
                self.summary.found = len(jobs)
                self._map(pool, progress, "paintings", lambda job: self._fetch_painting(*job),
                          list(jobs.values()), lambda job: job[0].url)
        finally:  # on Ctrl-C: drop queued work, let running downloads finish, keep the record
            pool.shutdown(wait=True, cancel_futures=True)
            self.manifest.save()
            atomic_write_csv(self.failures_path, ["url", "reason"],
                             [{"url": u, "reason": r} for u, r in self.summary.failures])
        return self.summary

    def _map(self, pool: ThreadPoolExecutor, progress: Progress, what: str, fn: Callable, items: list,
             url_of: Callable[..., str], on_failure=None) -> list:
        """fn over items on the pool; an item that raises anything is recorded under its URL (`url_of`) and
        gives `on_failure`: a bug in one item is logged with its traceback and the run goes on."""
        task = progress.add_task(what, total=len(items))

        def guarded(item):
            try:
                return fn(item)
            except Disallowed as e:
                log.info("not fetched %s: %s", e.url, e.reason)
                self._record(e.url, e.reason, "disallowed")
            except FetchError as e:
                self._fail(e.url, e.reason)
            except Exception as e:
                log.exception("error while handling %s", url_of(item))
                self._fail(url_of(item), f"{type(e).__name__}: {e}")
            finally:
                progress.advance(task)
            return on_failure

        return list(pool.map(guarded, items))

    def _fail(self, url: str, reason: str) -> None:
        log.warning("failed %s: %s", url, reason)
        self._record(url, reason, "failed")

    def _record(self, url: str, reason: str, counter: str) -> None:
        with self._lock:
            setattr(self.summary, counter, getattr(self.summary, counter) + 1)
            self.summary.failures.append((url, reason))

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self.summary, name, getattr(self.summary, name) + n)

    def _read_index(self, letter: str) -> list[ArtistEntry]:
        artists = self.site.index(self.client, letter)
        if not artists:  # every letter has artists: the page is not what it should be
            self._fail(self.site.index_url(letter), "the artist index lists no artists")
        return artists

    def _may_keep(self, artist: ArtistEntry) -> bool:
        dates_ok = artist.born > self.born_after and artist.died is not None and 0 < artist.died < self.died_before
        return dates_ok and artist.public_domain is not False

    def _read_artist(self, artist: ArtistEntry) -> _Artist | None:
        movements = self.site.movements(self.client, artist)
        if movements is None or self._modern(movements):
            return _Artist(artist, None if movements is None else tuple(movements))
        return None

    def _modern(self, movements: Iterable[str]) -> bool:
        return any(word in m.lower() for m in movements for word in self.movements)

    def _read_works(self, artist: _Artist) -> list[WorkEntry]:
        works = self.site.works(self.client, artist.entry)
        if not works:  # an artist is listed for their works
            self._fail(self.site.works_url(artist.entry.url), "the works list lists no works")
        return works

    def _fetch_painting(self, work: WorkEntry, artist: _Artist) -> None:
        known = self.manifest.get(work.url)
        if known and (self.images_dir / known.file).exists():
            self._count(kept=1, skipped=1)
            return
        page = self.site.painting(self.client, work)
        if not page.license:  # every painting page states one: this one did not read as it should
            self._fail(work.url, "painting page shows no licence")
            return
        if not any(x in page.license.lower() for x in self.licenses):
            return
        if artist.movements is None:  # the painting's style decides
            if not page.style:
                self._fail(work.url, "painting details show no style")
                return
            if not self._modern([page.style]):
                return
        if not page.image_url:
            self._fail(work.url, "painting page has no image")
            return
        self._count(kept=1)
        title = page.title or work.title
        row = dict(artist=artist.entry.name, title=title, year=page.year or work.year,
                   movement=page.style or ", ".join(artist.movements or ()), page_url=work.url,
                   source_url=page.image_url, license=page.license)
        with self._lock:  # the first work to need an image claims it; the others wait for its file
            image = self._images.get(page.image_url)
            claimed = image is None
            if claimed:
                image = self._images[page.image_url] = _Image()
        if claimed:
            try:
                image.file, image.sha256, counter = self._obtain(page.image_url, artist.entry.name, title)
            finally:
                image.done.set()
        else:
            image.done.wait()
            if image.file is None:
                self._fail(work.url, f"its image {page.image_url} failed for another work")
                return
            counter = "shared"
        self.manifest.add(PaintingRecord(**row, file=image.file, sha256=image.sha256))
        self._count(**{counter: 1})

    def _obtain(self, url: str, artist: str, title: str) -> tuple[str, str, str]:
        """(file, sha256, summary counter) of the image at `url`: found on disk, else downloaded."""
        finished = [p for p in self.images_dir.glob(f"*_{name_tag(url)}.*") if p.suffix in IMAGE_FORMATS.values()]
        if finished:  # written by a run killed before it saved the manifest
            return finished[0].name, sha256_file(finished[0]), "skipped"
        stem = safe_stem(artist, title, url)
        part = self.images_dir / f".{stem}.part"
        try:
            download = self.client.download(url, part, self.max_bytes)
            path = self.images_dir / f"{stem}{_check_image(part, url)}"
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        return path.name, download.sha256, "downloaded"


def _check_image(path: Path, url: str) -> str:
    """Decode the whole file (catches truncated and non-image bodies); returns the extension for its format."""
    try:
        with Image.open(path) as image:
            image.load()
            fmt = image.format
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FetchError(url, f"not a decodable image ({e})") from None
    if fmt not in IMAGE_FORMATS:
        raise FetchError(url, f"unsupported image format {fmt} (expected one of {sorted(IMAGE_FORMATS)})")
    return IMAGE_FORMATS[fmt]


def check_scrape_settings(base_url: str, source: str, language: str, letters: str | Sequence[str], born_after: int,
                          died_before: int, movements: Sequence[str], licenses: Sequence[str], workers: int,
                          max_bytes: int, manifest_save_every_s: float, http: Mapping) -> None:
    """Refuse bad scrape settings (`prepare` checks them before any stage runs)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError("base_url", base_url, "an http:// or https:// address")
    check_choice("source", source, tuple(SOURCES))
    check_text("language", language)
    (check_text if isinstance(letters, str) else check_texts)("letters", letters)
    check_int("born_after", born_after)
    check_int("died_before", died_before, at_least=born_after + 1)
    check_texts("movements", movements)
    check_texts("licenses", licenses)
    check_int("workers", workers, at_least=1)
    check_int("max_bytes", max_bytes, at_least=1)
    check_float("manifest_save_every_s", manifest_save_every_s, above=0)
    with config_key("http"):
        HttpClient(**http)


def scrape(out_dir: str | Path, base_url: str, source: str, language: str, letters: str | Sequence[str],
           born_after: int, died_before: int, movements: Sequence[str], licenses: Sequence[str], workers: int,
           max_bytes: int, manifest_save_every_s: float, http: Mapping) -> ScrapeSummary:
    """Run the scrape into `out_dir` (images/, manifest.csv, failures.csv); see conf/prepare.yaml."""
    check_scrape_settings(base_url, source, language, letters, born_after, died_before, movements, licenses,
                          workers, max_bytes, manifest_save_every_s, http)
    client = HttpClient(**http)
    if http.get("contact") is None:
        log.warning("scrape.http.contact is not set: the sites cannot tell who to write to about this crawler")
    try:
        site = SOURCES[source](base_url, language)
        if client.robots:  # a site that does not answer is one clear error, not a failure per page
            try:
                client.robots.rules(site.base_url)
            except FetchError as e:
                raise UserError(f"{e.reason}; is scrape.base_url={base_url!r} right and the "
                                "site up? (scrape.http.obey_robots_txt=false skips robots.txt)") from None
        scraper = _Scraper(Path(out_dir), site, client, movements, licenses, born_after, died_before, max_bytes,
                           workers, manifest_save_every_s)
        return scraper.run(letters)
    finally:
        client.close()
