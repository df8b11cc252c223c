"""The real scraper and HTTP client against a real HTTP server on 127.0.0.1 serving WikiArt-shaped pages."""

from __future__ import annotations

import hashlib
import html
import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from data_modules.files import read_csv, sha256_file
from data_modules.scrape import scrape
from data_modules.scrape.client import FetchError, HttpClient, retry_after_seconds
from data_modules.scrape.manifest import MANIFEST_FIELDS, safe_stem

REPO = Path(__file__).resolve().parents[1]
UA = "magnet-test-agent/1.0"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict = field(default_factory=dict)
    cut_after: int | None = None  # close the connection after this many body bytes (Content-Length stays full)


@dataclass
class Hit:
    time: float
    path: str
    status: int
    user_agent: str
    completed: bool = False


class FakeWikiArt:
    """A threaded HTTP server whose routes reply in turn (the last reply repeats) and that logs every hit."""

    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.hits: list[Hit] = []
        self.hold: dict[str, threading.Event] = {}  # path -> event the reply waits for
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.serve(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return self.url + path

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            replies = self.routes.get(handler.path, [Reply(404, b"not found")])
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            hit = Hit(time.monotonic(), handler.path, reply.status, handler.headers.get("User-Agent", ""))
            self.hits.append(hit)
        if handler.path in self.hold:
            self.hold[handler.path].wait(30)
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(reply.body[: reply.cut_after])
            handler.wfile.flush()
            if reply.cut_after is not None:
                handler.close_connection = True
                return
            hit.completed = True
        except (BrokenPipeError, ConnectionResetError):
            pass

    def hits_of(self, path: str, completed_only: bool = False) -> list[Hit]:
        return [h for h in self.hits if h.path == path and (h.completed or not completed_only)]

    def close(self) -> None:
        for event in self.hold.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    server = FakeWikiArt()
    yield server
    server.close()


def index_page(artists: list[tuple[str, str, str]]) -> bytes:
    """Artist index shaped like /en/Alphabet/<letter>/text-list: name link, then ", born - died"."""
    items = "".join(
        f'<li><a href="{href}">{html.escape(name)}</a><span>, {dates}</span></li>\n' for href, name, dates in artists
    )
    nav = '<ul class="menu"><li><a href="/en/artists-by-art-movement">Art movements</a></li></ul>'
    return (f'<html><body>{nav}<main><div class="masonry-text-view masonry-text-view-all"><ul>\n'
            f"{items}</ul></div></main></body></html>").encode()


def artist_page(name: str, movements: list[str]) -> bytes:
    links = ", ".join(f'<a href="/en/artists-by-art-movement/{m.lower()}">{m}</a>' for m in movements)
    return (f"<html><body><article><h3>{html.escape(name)}</h3><ul>"
            f'<li><s>Born:</s><span itemprop="birthDate">1864</span></li>'
            f'<li class="dictionary-values "><s>Art Movement:</s><span>{links}</span></li>'
            f'<li><s>Nationality:</s><span>German</span></li></ul>'
            f"<p>Some biography text mentioning modern times.</p></article></body></html>").encode()


def works_page(artist_href: str, works: list[tuple[str, str, str]]) -> bytes:
    items = "".join(
        f'<li class="painting-list-text-row"><a href="{artist_href}/{slug}">{html.escape(title)}</a>'
        f"<span>, {year}</span></li>\n" for slug, title, year in works
    )
    return (f'<html><body><ul class="painting-list-text">\n{items}</ul>'
            f'<a href="{artist_href}/all-works">All works</a></body></html>').encode()


def painting_page(title: str, artist: str, year: str, style: str, licence: str, image_url: str) -> bytes:
    return (f'<html><head><meta property="og:image" content="{html.escape(image_url)}">'
            f'<meta property="og:title" content="{html.escape(title)}"></head><body><article>'
            f"<h3>{html.escape(title)}</h3>"
            f'<h5 itemprop="creator"><span><a href="/en/x">{html.escape(artist)}</a></span></h5><ul>'
            f'<li><s>Date:</s><span itemprop="dateCreated">{year}</span></li>'
            f'<li><s>Style:</s><span><a href="/en/paintings-by-style/x">{style}</a></span></li>'
            f'<li><s>Genre:</s><span><a href="/en/paintings-by-genre/portrait">portrait</a></span></li></ul>'
            f'<div class="copyright-wrapper"><a href="/en/public-domain">{licence}</a></div>'
            f"</article></body></html>").encode()


def jpeg(path: Path) -> Reply:
    return Reply(body=path.read_bytes(), content_type="image/jpeg")


def png_bytes(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("P").save(buffer, format="PNG")
    return buffer.getvalue()


def scrape_cfg(site_url: str, out_dir: Path, *overrides: str):
    """The real `scrape` section of conf/prepare.yaml, pointed at the local server and made fast."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("prepare", overrides=[
            f"root={out_dir}", f"scrape.base_url={site_url}", "scrape.letters=ab",
            f"scrape.http.user_agent={UA}", "scrape.http.requests_per_second=null",
            "scrape.http.backoff=0.01", "scrape.http.max_backoff=0.05", "scrape.http.timeout=5", *overrides,
        ])
    return OmegaConf.to_container(cfg.scrape, resolve=True)


def build_site(site: FakeWikiArt, paintings: list[Path]) -> dict:
    """Two index letters, six artists (two kept), fourteen works with every fault the issue lists."""
    site.add("/en/Alphabet/a/text-list", Reply(body=index_page([
        ("/en/alexej-von-jawlensky", "Alexej von Jawlensky", "1864 - 1941"),  # kept
        ("/en/albrecht-altdorfer", "Albrecht Altdorfer", "1480 - 1538"),  # born too early
        ("/en/anna-alive", "Anna Alive", "1950 - "),  # living
        ("/en/arthur-late", "Arthur Late", "1900 - 1975"),  # died too late
    ])))
    site.add("/en/Alphabet/b/text-list", Reply(body=index_page([
        ("/en/bela-kadar", "Béla Kádár", "1877 - 1945"),  # kept
        ("/en/bertha-academic", "Bertha Academic", "1850 - 1920"),  # not a modern movement
        ("/en/boris-broken", "Boris Broken", "1870 - 1930"),  # page missing: one failure, not the letter
    ])))
    site.add("/en/alexej-von-jawlensky", Reply(body=artist_page("Alexej von Jawlensky", ["Expressionism"])))
    site.add("/en/bela-kadar", Reply(body=artist_page("Béla Kádár", ["Art Deco", "Cubism"])))
    site.add("/en/bertha-academic", Reply(body=artist_page("Bertha Academic", ["Academic Art", "Realism"])))
    site.add("/en/bertha-academic/all-works/text-list", Reply(body=b"must not be read"))

    jaw = "/en/alexej-von-jawlensky"
    works = [  # slug, title, licence, image reply(ies), note
        ("head", "Head of a Woman", "Public domain", [jpeg(paintings[0])]),
        ("evil", "../../etc/passwd / a\\b\x07 Variation", "Public domain", [jpeg(paintings[1])]),
        ("untitled-1", "Untitled", "Public domain", [jpeg(paintings[2])]),
        ("untitled-2", "Untitled", "Public domain", [jpeg(paintings[3])]),
        ("fair", "Fair Use Work", "Fair Use", [jpeg(paintings[4])]),
        ("page-503", "Page Busy Once", "Public domain", [jpeg(paintings[5])]),
        ("image-429", "Image Rate Limited", "Public domain",
         [Reply(429, b"slow down", headers={"Retry-After": "1"}), jpeg(paintings[6])]),
        ("truncated", "Truncated", "Public domain",
         [Reply(body=paintings[7].read_bytes()[: paintings[7].stat().st_size // 2], content_type="image/jpeg")]),
        ("not-image", "Not An Image", "Public domain", [Reply(body=b"<html>login</html>")]),
        ("cut", "Connection Cut Once", "Public domain",
         [Reply(body=paintings[8].read_bytes(), content_type="image/jpeg", cut_after=1000), jpeg(paintings[8])]),
        ("png", "A Png", "Public domain", [Reply(body=png_bytes(paintings[9]), content_type="image/png")]),
    ]
    site.add(f"{jaw}/all-works/text-list",
             Reply(body=works_page(jaw, [(slug, title, "1910") for slug, title, *_ in works])))
    expected = {}
    for slug, title, licence, replies in works:
        original = f"/images/jawlensky/{slug}.jpg"
        site.add(original, *replies)
        site.add(original + "!Large.jpg", Reply(body=b"a smaller rendition", content_type="image/jpeg"))
        page = painting_page(title, "Alexej von Jawlensky", "1910", "Expressionism", licence,
                             site.url + original + "!Large.jpg")
        first = [Reply(503, b"busy")] if slug == "page-503" else []
        site.add(f"{jaw}/{slug}", *first, Reply(body=page))
        expected[slug] = (site.url + original, replies[-1].body)

    bela = "/en/bela-kadar"
    site.add(f"{bela}/all-works/text-list", Reply(body=works_page(bela, [("tower", "Tower", "1925")])))
    site.add(f"{bela}/tower", Reply(body=painting_page("Tower", "Béla Kádár", "1925", "Cubism", "Public domain",
                                                        "/images/kadar/tower.jpg!Large.jpg")))
    site.add("/images/kadar/tower.jpg", jpeg(paintings[10]))
    expected["tower"] = (site.url + "/images/kadar/tower.jpg", paintings[10].read_bytes())
    return expected


def test_scrape_end_to_end_with_faults(site, museum_paintings, tmp_path):
    expected = build_site(site, museum_paintings)
    summary = scrape(**scrape_cfg(site.url, tmp_path))

    assert (summary.artists_found, summary.artists_kept) == (7, 2)
    assert (summary.found, summary.kept, summary.downloaded, summary.skipped, summary.failed) == (12, 11, 9, 0, 3)
    reasons = dict(summary.failures)
    assert "HTTP 404" in reasons[site.url + "/en/boris-broken"]
    assert "not a decodable image" in reasons[site.url + "/images/jawlensky/truncated.jpg"]
    assert "not an image" in reasons[site.url + "/images/jawlensky/not-image.jpg"]
    assert len(read_csv(tmp_path / "paintings" / "failures.csv")) == 3

    images = tmp_path / "paintings" / "images"
    rows = read_csv(tmp_path / "paintings" / "manifest.csv")
    assert list(rows[0]) == MANIFEST_FIELDS
    by_page = {row["page_url"].rsplit("/", 1)[1]: row for row in rows}
    assert set(by_page) == {"head", "evil", "untitled-1", "untitled-2", "page-503", "image-429", "cut", "png",
                            "tower"}
    for slug, row in by_page.items():
        url, body = expected[slug]
        assert row["source_url"] == url  # the original, not the "!Large.jpg" rendition
        assert row["sha256"] == hashlib.sha256(body).hexdigest() == sha256_file(images / row["file"])
        assert row["license"] == "Public domain"
    assert by_page["head"]["artist"] == "Alexej von Jawlensky" and by_page["head"]["year"] == "1910"
    assert by_page["head"]["movement"] == "Expressionism" and by_page["tower"]["artist"] == "Béla Kádár"
    assert by_page["png"]["file"].endswith(".png") and by_page["head"]["file"].endswith(".jpg")

    names = [row["file"] for row in rows]
    assert len(set(names)) == len(names)  # the two "Untitled" works get different files
    assert sorted(p.name for p in images.iterdir()) == sorted(names)  # nothing else, no leftovers
    evil = by_page["evil"]["file"]
    assert "/" not in evil and "\\" not in evil and ".." not in evil and "\x07" not in evil
    assert (images / evil).resolve().parent == images.resolve()

    assert all(h.user_agent == UA for h in site.hits)
    assert not site.hits_of("/en/albrecht-altdorfer") and not site.hits_of("/en/bertha-academic/all-works/text-list")
    assert not site.hits_of("/images/jawlensky/fair.jpg")  # not public domain: never downloaded
    assert not any(h.path.endswith("!Large.jpg") for h in site.hits)
    assert [h.status for h in site.hits_of("/en/alexej-von-jawlensky/page-503")] == [503, 200]
    limited = site.hits_of("/images/jawlensky/image-429.jpg")
    assert [h.status for h in limited] == [429, 200] and limited[1].time - limited[0].time >= 0.95
    assert [h.completed for h in site.hits_of("/images/jawlensky/cut.jpg")] == [False, True]
    assert len(site.hits_of("/images/jawlensky/truncated.jpg")) == 1  # a bad image is not a transient error

    # A rerun downloads nothing again and reads no painting page it already has.
    hits_before = len(site.hits)
    again = scrape(**scrape_cfg(site.url, tmp_path))
    assert (again.kept, again.downloaded, again.skipped, again.failed) == (11, 0, 9, 3)
    new_paths = {h.path for h in site.hits[hits_before:]}
    assert not any(p in new_paths for p in ("/images/jawlensky/head.jpg", "/en/alexej-von-jawlensky/head"))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_and_resume_downloads_each_image_once(site, museum_paintings, tmp_path, stop):
    artist = "/en/wassily-kandinsky"
    site.add("/en/Alphabet/w/text-list", Reply(body=index_page([(artist, "Wassily Kandinsky", "1866 - 1944")])))
    site.add(artist, Reply(body=artist_page("Wassily Kandinsky", ["Abstract Art"])))
    slugs = [f"composition-{i}" for i in range(4)]
    site.add(f"{artist}/all-works/text-list",
             Reply(body=works_page(artist, [(s, s.replace("-", " ").title(), "1913") for s in slugs])))
    for slug, painting in zip(slugs, museum_paintings):
        site.add(f"{artist}/{slug}", Reply(body=painting_page(slug, "Wassily Kandinsky", "1913", "Abstract Art",
                                                              "Public domain", f"/img/{slug}.jpg!Large.jpg")))
        site.add(f"/img/{slug}.jpg", jpeg(painting))
    held = "/img/composition-2.jpg"
    site.hold[held] = threading.Event()

    cfg = ["scrape.letters=w", "scrape.workers=1", "scrape.manifest_save_every_s=60"]
    overrides = [f"root={tmp_path}", f"scrape.base_url={site.url}", f"scrape.http.user_agent={UA}",
                 "scrape.http.requests_per_second=null", "scrape.http.timeout=30", *cfg]
    process = subprocess.Popen(
        [sys.executable, "-m", "data_modules.prepare", "stage=scrape", f"hydra.run.dir={tmp_path}/hydra",
         *overrides], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not site.hits_of(held) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert site.hits_of(held), process.stderr.read().decode() if process.poll() is not None else "timeout"
        # SIGKILL: no chance to save anything. SIGINT (Ctrl-C): the running download ends, the rest is dropped.
        os.kill(process.pid, stop)
        if stop == signal.SIGINT:
            time.sleep(0.3)
            site.hold[held].set()
        assert process.wait(20) != 0
    finally:
        if process.poll() is None:
            process.kill()
    site.hold[held].set()
    assert len(site.hits_of("/img/composition-0.jpg", completed_only=True)) == 1
    saved = read_csv(tmp_path / "paintings" / "manifest.csv")
    assert len(saved) == (0 if stop == signal.SIGKILL else 3)
    assert not site.hits_of("/img/composition-3.jpg")

    summary = scrape(**scrape_cfg(site.url, tmp_path, *cfg))
    done_before = 2 if stop == signal.SIGKILL else 3
    assert (summary.kept, summary.downloaded, summary.skipped, summary.failed) == (4, 4 - done_before, done_before, 0)
    for slug in slugs:
        assert len(site.hits_of(f"/img/{slug}.jpg", completed_only=True)) == 1
    rows = read_csv(tmp_path / "paintings" / "manifest.csv")
    images = tmp_path / "paintings" / "images"
    assert sorted(r["page_url"].rsplit("/", 1)[1] for r in rows) == slugs
    assert all(sha256_file(images / r["file"]) == r["sha256"] for r in rows)
    assert not list(images.glob(".*"))  # the killed run's partial file is gone


def client(**overrides) -> HttpClient:
    settings = dict(user_agent=UA, requests_per_second=None, timeout=5.0, retries=3, backoff=0.01,
                    max_backoff=0.05, max_retry_after=300.0)
    return HttpClient(**{**settings, **overrides})


def test_client_rate_retries_and_size_cap(site, museum_paintings, tmp_path):
    paths = [site.add(f"/page/{i}", Reply(body=b"<p>hi</p>")) for i in range(6)]
    limited = client(requests_per_second=20)
    threads = [threading.Thread(target=limited.get_text, args=(url,)) for url in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts = sorted(h.time for h in site.hits)
    assert starts[-1] - starts[0] >= 5 / 20 * 0.9  # six requests at 20/s from six threads

    always_down = site.add("/down", Reply(500, b"oops"))
    with pytest.raises(FetchError, match="HTTP 500 after 4 attempts"):
        client().get_text(always_down)
    assert len(site.hits_of("/down")) == 4
    missing = site.add("/gone", Reply(404, b"no"))
    with pytest.raises(FetchError, match="HTTP 404"):
        client().get_text(missing)
    assert len(site.hits_of("/gone")) == 1  # a 404 is not retried

    image = museum_paintings[0].read_bytes()
    url = site.add("/big.jpg", Reply(body=image, content_type="image/jpeg"))
    with pytest.raises(FetchError, match="too large"):
        client().download(url, tmp_path / "big.part", max_bytes=len(image) - 1)
    done = client().download(url, tmp_path / "ok.part", max_bytes=len(image))
    assert (done.size, done.sha256) == (len(image), hashlib.sha256(image).hexdigest())
    assert (tmp_path / "ok.part").read_bytes() == image


def test_retry_after_header_forms():
    from datetime import datetime, timezone

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


@pytest.mark.parametrize("title", ["../../etc/passwd", "a/b\\c", "..", "\x00\x1f\x7f", "日本の" * 100, "CON", ""])
def test_safe_stem_is_a_plain_bounded_unique_name(title):
    stem = safe_stem("Some / Artist", title, key="https://x/en/a/" + title)
    assert stem and "/" not in stem and "\\" not in stem and "." not in stem
    assert all(ch.isprintable() for ch in stem) and len(stem.encode("utf-8")) <= 120 + 9
    assert stem != safe_stem("Some / Artist", title, key="https://x/en/a/other")
    assert stem == safe_stem("Some / Artist", title, key="https://x/en/a/" + title)
