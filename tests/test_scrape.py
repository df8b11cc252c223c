"""The real scraper and HTTP client against a real HTTP server on 127.0.0.1 serving WikiArt-shaped pages."""

from __future__ import annotations

import gzip
import hashlib
import html
import importlib.metadata
import io
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from data_modules.files import read_csv, sha256_file
from data_modules.scrape import scrape
from data_modules.scrape.client import FetchError, HttpClient, retry_after_seconds
from data_modules.scrape.manifest import MANIFEST_FIELDS, safe_stem
from data_modules.scrape.wikiart import WikiArtSite
from magnet.web.urls import iri_to_uri

REPO = Path(__file__).resolve().parents[1]
CONTACT = "tests@magnet.invalid"
UA = f"magnet-scraper/{importlib.metadata.version('magnet')} (+{CONTACT})"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict = field(default_factory=dict)
    cut_after: int | None = None  # close the connection after this many body bytes (Content-Length stays full)
    trickle: float = 0.0  # send the body one byte at a time, this many seconds apart ...
    trickle_head: bool = False  # ... and the status line and headers too
    hang_up: bool = False  # close the connection after the reply without saying so (no "Connection: close")


@dataclass
class Hit:
    time: float
    path: str
    status: int
    user_agent: str
    completed: bool = False


class FakeWikiArt:
    """A threaded HTTP/1.1 server whose routes reply in turn (the last reply repeats) and that logs every hit
    and counts the TCP connections it accepted."""

    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.hits: list[Hit] = []
        self.connections = 0
        self.hold: dict[str, threading.Event] = {}  # path -> event the reply waits for
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive unless a reply closes
            disable_nagle_algorithm = True  # as real servers do: a reply is not held back waiting for an ACK

            def setup(self):
                super().setup()
                with site.lock:
                    site.connections += 1

            def do_GET(self):
                site.serve(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
            if reply.trickle:
                self.trickle(handler, reply)
                return
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
            handler.close_connection = handler.close_connection or reply.hang_up
            hit.completed = True
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def trickle(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        head = (f"HTTP/1.0 {reply.status} OK\r\nContent-Type: {reply.content_type}\r\n"
                f"Content-Length: {len(reply.body)}\r\n\r\n").encode()
        if not reply.trickle_head:
            handler.wfile.write(head)
            head = b""
        for i in range(len(head + reply.body)):
            handler.wfile.write((head + reply.body)[i : i + 1])
            handler.wfile.flush()
            time.sleep(reply.trickle)

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


def windows_1252(page: bytes, meta: str = '<meta charset="windows-1252">') -> Reply:
    """A page re-encoded in windows-1252 whose charset only the page itself declares (the header has none)."""
    text = page.decode("utf-8").replace("<html>", f"<html>{meta}", 1)
    return Reply(body=text.encode("cp1252"), content_type="text/html")


HTTP_EQUIV_1252 = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'


def served_at(href: str) -> str:
    """The request path a browser sends for a link as written (stdlib quote, existing %XX kept)."""
    return quote(href, safe="/%")


def add_artist(site: FakeWikiArt, href: str, name: str, works: list[tuple[str, str, str]]) -> None:
    """An Expressionist's page, works list and painting pages; works are (slug, title, og:image) as written."""
    site.add(served_at(href), Reply(body=artist_page(name, ["Expressionism"])))
    site.add(served_at(f"{href}/all-works/text-list"),
             Reply(body=works_page(href, [(slug, title, "1910") for slug, title, _ in works])))
    for slug, title, image in works:
        site.add(served_at(f"{href}/{slug}"),
                 Reply(body=painting_page(title, name, "1910", "Expressionism", "Public domain", image)))


def scrape_cfg(site_url: str, out_dir: Path, *overrides: str):
    """The real `scrape` section of conf/prepare.yaml, pointed at the local server and made fast."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("prepare", overrides=[
            f"root={out_dir}", f"scrape.base_url={site_url}", "scrape.letters=abc",
            f"scrape.http.contact={CONTACT}", "scrape.http.obey_robots_txt=false",
            "scrape.http.requests_per_second=null", "scrape.http.backoff=0.01", "scrape.http.max_backoff=0.05",
            "scrape.http.timeout=5", *overrides,
        ])
    return OmegaConf.to_container(cfg.scrape, resolve=True)


def build_site(site: FakeWikiArt, paintings: list[Path]) -> dict:
    """Three index letters, eight artists (three kept), eighteen works with every fault the issues list."""
    site.add("/en/Alphabet/a/text-list", Reply(body=index_page([
        ("/en/alexej-von-jawlensky", "Alexej von Jawlensky", "1864 - 1941"),  # kept
        ("/en/albrecht-altdorfer", "Albrecht Altdorfer", "1480 - 1538"),  # born too early
        ("/en/anna-alive", "Anna Alive", "1950 - "),  # living
        ("/en/arthur-late", "Arthur Late", "1900 - 1975"),  # died too late
        ("/en/anton-empty", "Anton Empty", "1880 - 1940"),  # kept, but the works list lists nothing
    ])))
    site.add("/en/Alphabet/b/text-list", windows_1252(index_page([  # "Béla Kádár" in bytes 0xe9, 0xe1
        ("/en/bela-kadar", "Béla Kádár", "1877 - 1945"),  # kept
        ("/en/bertha-academic", "Bertha Academic", "1850 - 1920"),  # not a modern movement
        ("/en/boris-broken", "Boris Broken", "1870 - 1930"),  # page missing: one failure, not the letter
    ])))
    site.add("/en/Alphabet/c/text-list", Reply(body=index_page([])))  # no artists: recorded, not ignored
    site.add("/en/alexej-von-jawlensky", Reply(body=artist_page("Alexej von Jawlensky", ["Expressionism"])))
    site.add("/en/anton-empty", Reply(body=artist_page("Anton Empty", ["Expressionism"])))
    site.add("/en/anton-empty/all-works/text-list", Reply(body=works_page("/en/anton-empty", [])))
    site.add("/en/bela-kadar", Reply(body=artist_page("Béla Kádár", ["Art Deco", "Cubism"])))
    site.add("/en/bertha-academic", Reply(body=artist_page("Bertha Academic", ["Academic Art", "Realism"])))
    site.add("/en/bertha-academic/all-works/text-list", Reply(body=b"must not be read"))

    jaw = "/en/alexej-von-jawlensky"
    gzipped = paintings[11].read_bytes()
    works = [  # slug, title, licence, image reply(ies), the painting page's reply
        ("head", "Head of a Woman", "Public domain", [jpeg(paintings[0])], Reply),
        ("evil", "../../etc/passwd / a\\b\x07 Variation", "Public domain", [jpeg(paintings[1])], Reply),
        ("untitled-1", "Untitled", "Public domain", [jpeg(paintings[2])], Reply),
        ("untitled-2", "Untitled", "Public domain", [jpeg(paintings[3])], Reply),
        ("fair", "Fair Use Work", "Fair Use", [jpeg(paintings[4])], Reply),
        ("no-licence", "Licence Not Found", "", [jpeg(paintings[4])], Reply),
        ("page-503", "Page Busy Once", "Public domain", [jpeg(paintings[5])], Reply),
        ("image-429", "Image Rate Limited", "Public domain",
         [Reply(429, b"slow down", headers={"Retry-After": "1"}), jpeg(paintings[6])], Reply),
        ("truncated", "Truncated", "Public domain",
         [Reply(body=paintings[7].read_bytes()[: paintings[7].stat().st_size // 2], content_type="image/jpeg")],
         Reply),
        ("not-image", "Not An Image", "Public domain", [Reply(body=b"<html>login</html>")], Reply),
        ("cut", "Connection Cut Once", "Public domain",
         [Reply(body=paintings[8].read_bytes(), content_type="image/jpeg", cut_after=1000), jpeg(paintings[8])],
         Reply),
        ("png", "A Png", "Public domain", [Reply(body=png_bytes(paintings[9]), content_type="image/png")], Reply),
        ("gzip", "Sent Gzipped", "Public domain", [Reply(body=gzip.compress(gzipped), content_type="image/jpeg",
                                                         headers={"Content-Encoding": "gzip"})], Reply),
        ("cafe", "Café “Nuit” à Paris", "Public domain", [jpeg(paintings[12])],
         lambda body: windows_1252(body, HTTP_EQUIV_1252)),
        ("deflated", "Page Sent Deflated", "Public domain", [jpeg(paintings[13])],
         lambda body: Reply(body=zlib.compress(body), headers={"Content-Encoding": "deflate"})),
    ]
    all_works = [(slug, title, "1910") for slug, title, *_ in works] + [("head-again", "Head (Study)", "1910"),
                                                                        ("loop", "Redirect Loop", "1910")]
    site.add(f"{jaw}/all-works/text-list", Reply(body=works_page(jaw, all_works)))
    expected = {}
    for slug, title, licence, replies, page_reply in works:
        original = f"/images/jawlensky/{slug}.jpg"
        site.add(original, *replies)
        site.add(original + "!Large.jpg", Reply(body=b"a smaller rendition", content_type="image/jpeg"))
        page = painting_page(title, "Alexej von Jawlensky", "1910", "Expressionism", licence,
                             site.url + original + "!Large.jpg")
        first = [Reply(503, b"busy")] if slug == "page-503" else []
        site.add(f"{jaw}/{slug}", *first, page_reply(body=page))
        expected[slug] = (site.url + original, replies[-1].body)
    expected["gzip"] = (expected["gzip"][0], gzipped)
    # a second page showing the image of "head": one download, two rows naming one file
    site.add(f"{jaw}/head-again", Reply(body=painting_page("Head (Study)", "Alexej von Jawlensky", "1910",
                                                           "Expressionism", "Public domain",
                                                           "/images/jawlensky/head.jpg!Large.jpg")))
    expected["head-again"] = expected["head"]
    site.add(f"{jaw}/loop", Reply(302, headers={"Location": f"{jaw}/loop-2"}))
    site.add(f"{jaw}/loop-2", Reply(302, headers={"Location": f"{site.url}{jaw}/loop"}))

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

    assert (summary.artists_found, summary.artists_kept) == (8, 3)
    assert (summary.found, summary.kept, summary.downloaded, summary.skipped, summary.shared, summary.failed) == (
        18, 15, 12, 0, 1, 7)
    reasons = dict(summary.failures)
    assert "HTTP 404" in reasons[site.url + "/en/boris-broken"]
    assert "not a decodable image" in reasons[site.url + "/images/jawlensky/truncated.jpg"]
    assert "not an image" in reasons[site.url + "/images/jawlensky/not-image.jpg"]
    assert "lists no artists" in reasons[site.url + "/en/Alphabet/c/text-list"]
    assert "lists no works" in reasons[site.url + "/en/anton-empty/all-works/text-list"]
    assert "redirect loop" in reasons[site.url + "/en/alexej-von-jawlensky/loop"]
    assert "shows no licence" in reasons[site.url + "/en/alexej-von-jawlensky/no-licence"]
    failures_csv = {row["url"]: row["reason"] for row in read_csv(tmp_path / "paintings" / "failures.csv")}
    assert failures_csv == reasons

    images = tmp_path / "paintings" / "images"
    rows = read_csv(tmp_path / "paintings" / "manifest.csv")
    assert list(rows[0]) == MANIFEST_FIELDS
    by_page = {row["page_url"].rsplit("/", 1)[1]: row for row in rows}
    assert set(by_page) == {"head", "evil", "untitled-1", "untitled-2", "page-503", "image-429", "cut", "png",
                            "gzip", "cafe", "deflated", "head-again", "tower"}
    for slug, row in by_page.items():
        url, body = expected[slug]
        assert row["source_url"] == url  # the original, not the "!Large.jpg" rendition
        assert row["sha256"] == hashlib.sha256(body).hexdigest() == sha256_file(images / row["file"])
        assert row["license"] == "Public domain"
    assert by_page["head"]["artist"] == "Alexej von Jawlensky" and by_page["head"]["year"] == "1910"
    assert by_page["head"]["movement"] == "Expressionism" and by_page["tower"]["artist"] == "Béla Kádár"
    assert by_page["cafe"]["title"] == "Café “Nuit” à Paris" and by_page["deflated"]["title"] == "Page Sent Deflated"
    assert by_page["png"]["file"].endswith(".png") and by_page["head"]["file"].endswith(".jpg")
    assert by_page["head-again"]["title"] == "Head (Study)" and by_page["head-again"]["file"] == by_page["head"]["file"]

    names = {row["file"] for row in rows}
    assert len(names) == len(rows) - 1  # the two "Untitled" works get different files; the two heads one
    assert sorted(p.name for p in images.iterdir()) == sorted(names)  # nothing else, no leftovers
    evil = by_page["evil"]["file"]
    assert "/" not in evil and "\\" not in evil and ".." not in evil and "\x07" not in evil
    assert (images / evil).resolve().parent == images.resolve()

    assert all(h.user_agent == UA for h in site.hits)
    assert not site.hits_of("/en/albrecht-altdorfer") and not site.hits_of("/en/bertha-academic/all-works/text-list")
    assert not site.hits_of("/images/jawlensky/fair.jpg")  # not public domain: never downloaded
    assert not site.hits_of("/images/jawlensky/no-licence.jpg")
    assert not any(h.path.endswith("!Large.jpg") for h in site.hits)
    assert [h.status for h in site.hits_of("/en/alexej-von-jawlensky/page-503")] == [503, 200]
    limited = site.hits_of("/images/jawlensky/image-429.jpg")
    assert [h.status for h in limited] == [429, 200] and limited[1].time - limited[0].time >= 0.95
    assert [h.completed for h in site.hits_of("/images/jawlensky/cut.jpg")] == [False, True]
    assert len(site.hits_of("/images/jawlensky/truncated.jpg")) == 1  # a bad image is not a transient error
    assert len(site.hits_of("/images/jawlensky/head.jpg")) == 1  # two pages, one download
    assert len(site.hits_of("/en/alexej-von-jawlensky/loop")) == 1  # a loop is not retried

    # A rerun downloads nothing again and reads no painting page it already has.
    hits_before = len(site.hits)
    again = scrape(**scrape_cfg(site.url, tmp_path))
    assert (again.kept, again.downloaded, again.skipped, again.shared, again.failed) == (15, 0, 13, 0, 7)
    new_paths = {h.path for h in site.hits[hits_before:]}
    assert not any(p in new_paths for p in ("/images/jawlensky/head.jpg", "/en/alexej-von-jawlensky/head"))

    # A run killed before it saved the manifest: the pages are read again, every image is found on disk.
    (tmp_path / "paintings" / "manifest.csv").unlink()
    hits_before = len(site.hits)
    lost = scrape(**scrape_cfg(site.url, tmp_path))
    assert (lost.kept, lost.downloaded, lost.skipped, lost.shared, lost.failed) == (15, 0, 12, 1, 7)
    fetched = {h.path for h in site.hits[hits_before:] if h.path.startswith("/images/")}
    assert fetched == {"/images/jawlensky/truncated.jpg", "/images/jawlensky/not-image.jpg"}  # the failed ones
    assert sorted(read_csv(tmp_path / "paintings" / "manifest.csv"), key=str) == sorted(rows, key=str)
    assert sorted(p.name for p in images.iterdir()) == sorted(names)


def test_scrape_non_ascii_links_are_fetched_and_one_image_downloaded_once(site, museum_paintings, tmp_path):
    derain, yamada = "/en/andré-derain", "/en/山田-太郎"  # raw, as written in the pages
    site.add("/en/Alphabet/d/text-list", Reply(body=index_page([
        (derain, "André Derain", "1880 - 1940"), (yamada, "山田太郎", "1880 - 1940")])))
    add_artist(site, derain, "André Derain", [
        ("café-ü", "Café Über", "/images/andré/café-ü.jpg!Large.jpg"),
        ("reprise", "Café (reprise)", site.url + "/images/andr%C3%A9/caf%C3%A9-%C3%BC.jpg!Large.jpg"),  # the same
        ("%C3%A9t%C3%A9%201905", "Été 1905", "/images/andré/été%201905.jpg"),  # escapes kept, not doubled
        ("bad-image", "Bad Image Link", "http://[oops/x.jpg"),
        ("gone-1", "Gone", "/images/andré/gone.jpg"), ("gone-2", "Gone Again", "/images/andré/gone.jpg"),
    ])
    add_artist(site, yamada, "山田太郎", [("富士", "富士", "/images/山田/富士.jpg")])
    cafe = served_at("/images/andré/café-ü.jpg")
    assert cafe == "/images/andr%C3%A9/caf%C3%A9-%C3%BC.jpg"
    site.add(cafe, jpeg(museum_paintings[0]))
    site.add("/images/andr%C3%A9/%C3%A9t%C3%A9%201905.jpg", jpeg(museum_paintings[1]))
    site.add(served_at("/images/山田/富士.jpg"), jpeg(museum_paintings[2]))
    site.hold[cafe] = threading.Event()  # both pages of the café image are read before its download ends

    def release_when_both_pages_are_read():
        deadline = time.monotonic() + 10
        while not all(site.hits_of(served_at(f"{derain}/{slug}")) for slug in ("café-ü", "reprise")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        site.hold[cafe].set()

    release = threading.Thread(target=release_when_both_pages_are_read)
    release.start()
    summary = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=d"))
    release.join()

    assert (summary.artists_found, summary.artists_kept, summary.found, summary.kept) == (2, 2, 7, 7)
    assert (summary.downloaded, summary.shared, summary.failed) == (3, 1, 3)
    reasons = dict(summary.failures)
    assert "invalid URL" in reasons["http://[oops/x.jpg"]
    assert "HTTP 404" in reasons[site.url + "/images/andr%C3%A9/gone.jpg"]
    shared_failure = {url for url, reason in summary.failures if "failed for another work" in reason}
    assert shared_failure <= {site.url + served_at(f"{derain}/gone-{i}") for i in (1, 2)} and len(shared_failure) == 1
    assert {h.path for h in site.hits if h.status == 404} == {"/images/andr%C3%A9/gone.jpg"}  # all else found
    assert len(site.hits_of(cafe)) == 1 and len(site.hits_of("/images/andr%C3%A9/gone.jpg")) == 1

    rows = {row["title"]: row for row in read_csv(tmp_path / "paintings" / "manifest.csv")}
    assert set(rows) == {"Café Über", "Café (reprise)", "Été 1905", "富士"}
    assert rows["Café Über"]["file"] == rows["Café (reprise)"]["file"]
    assert rows["Café Über"]["source_url"] == rows["Café (reprise)"]["source_url"] == site.url + cafe
    assert rows["富士"]["page_url"] == site.url + served_at(f"{yamada}/富士") and rows["富士"]["artist"] == "山田太郎"
    images = tmp_path / "paintings" / "images"
    assert len(list(images.iterdir())) == 3
    assert sha256_file(images / rows["富士"]["file"]) == sha256_file(museum_paintings[2])

    # A new page showing an image of an earlier run gets a row naming that file, with no download.
    add_artist(site, derain, "André Derain", [("encore", "Encore", "/images/andré/café-ü.jpg")])
    again = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=d"))
    assert (again.downloaded, again.shared, again.failed) == (0, 1, 0) and len(site.hits_of(cafe)) == 1
    rows = {row["title"]: row for row in read_csv(tmp_path / "paintings" / "manifest.csv")}
    assert rows["Encore"]["file"] == rows["Café Über"]["file"]


def test_scrape_records_a_bug_in_one_item_and_goes_on(site, museum_paintings, tmp_path, monkeypatch, caplog):
    add_artist(site, "/en/ernst-ok", "Ernst Ok", [(f"w{i}", f"Work {i}", f"/img/w{i}.jpg") for i in range(3)])
    for i in range(3):
        site.add(f"/img/w{i}.jpg", jpeg(museum_paintings[i]))
    site.add("/en/Alphabet/e/text-list", Reply(body=index_page([("/en/ernst-ok", "Ernst Ok", "1880 - 1940")])))
    site.add("/en/Alphabet/f/text-list", Reply(body=index_page([("/en/fritz", "Fritz", "1880 - 1940")])))
    parse_painting, parse_index = WikiArtSite.parse_painting, WikiArtSite.parse_index

    def buggy_painting(self, html, page_url):
        if page_url.endswith("/w1"):
            raise RuntimeError("a bug")
        return parse_painting(self, html, page_url)

    def buggy_index(self, html, page_url):
        if "/f/" in page_url:
            raise KeyError("another bug")
        return parse_index(self, html, page_url)

    monkeypatch.setattr(WikiArtSite, "parse_painting", buggy_painting)
    monkeypatch.setattr(WikiArtSite, "parse_index", buggy_index)
    summary = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=ef"))

    assert (summary.found, summary.downloaded, summary.failed) == (3, 2, 2)
    assert dict(summary.failures) == {site.url + "/en/ernst-ok/w1": "RuntimeError: a bug",
                                      site.url + "/en/Alphabet/f/text-list": "KeyError: 'another bug'"}
    assert len(read_csv(tmp_path / "paintings" / "failures.csv")) == 2
    logged = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert RuntimeError in logged and KeyError in logged  # with their tracebacks


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
    overrides = [f"root={tmp_path}", f"scrape.base_url={site.url}", f"scrape.http.contact={CONTACT}",
                 "scrape.http.obey_robots_txt=false", "scrape.http.requests_per_second=null", "scrape.http.timeout=30",
                 *cfg]
    # A suite started in the background (`cmd &` in a shell without job control) ignores SIGINT, and a child
    # would inherit that; a handler of ours is not inherited, so the child starts with Ctrl-C's default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "data_modules.prepare", "stage=scrape", f"hydra.run.dir={tmp_path}/hydra",
             *overrides], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
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
    settings = dict(contact=CONTACT, obey_robots_txt=False, requests_per_second=None, timeout=5.0, retries=3,
                    backoff=0.01, max_backoff=0.05, max_retry_after=300.0)
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
    assert all(ch.isprintable() for ch in stem) and len(stem.encode("utf-8")) <= 120 + 13
    assert stem != safe_stem("Some / Artist", title, key="https://x/en/a/other")
    assert stem == safe_stem("Some / Artist", title, key="https://x/en/a/" + title)


@pytest.mark.parametrize(("iri", "uri"), [
    ("http://h/en/andré-derain/café-ü", "http://h/en/andr%C3%A9-derain/caf%C3%A9-%C3%BC"),
    ("http://h/山田/富士.jpg!Large.jpg", "http://h/%E5%B1%B1%E7%94%B0/%E5%AF%8C%E5%A3%AB.jpg!Large.jpg"),
    ("http://h/a%20b/%c3%a9t%C3%A9", "http://h/a%20b/%C3%A9t%C3%A9"),  # escapes kept (upper-cased), not doubled
    ("http://h/100%/x%zz", "http://h/100%25/x%25zz"),  # a "%" that starts no escape is encoded
    ("http://h/a b?q=é&r=日 本#frag ü", "http://h/a%20b?q=%C3%A9&r=%E6%97%A5%20%E6%9C%AC#frag%20%C3%BC"),
    ("https://bücher.example:8080/x", "https://xn--bcher-kva.example:8080/x"),  # IDNA host, port kept
    ("http://[::1]:8080/é", "http://[::1]:8080/%C3%A9"),
    ("http://h/a/b;c=d/e:f@g!$&'()*+,=", "http://h/a/b;c=d/e:f@g!$&'()*+,="),  # reserved characters stay
    ("  http://h/a\n/b\t ", "http://h/a/b"),  # as browsers do with whitespace
    ("/rel/é", "/rel/%C3%A9"),
])
def test_iri_to_uri(iri, uri):
    assert iri_to_uri(iri) == uri
    assert iri_to_uri(uri) == uri  # a URI is its own URI


@pytest.mark.parametrize("bad", ["http://h:port/", "http://h:99999/", "http://[::1/x", "http://a..b\u00e9/"])
def test_iri_to_uri_refuses_a_malformed_url(bad):
    with pytest.raises(ValueError):
        iri_to_uri(bad)
    with pytest.raises(FetchError, match="invalid URL"):
        client().get_text(bad)


@pytest.mark.parametrize("head", [False, True], ids=["body", "headers"])
def test_client_timeout_bounds_the_whole_request(site, head):
    slow = site.add("/slow", Reply(body=b"<p>one byte every 0.4 s</p>", trickle=0.4, trickle_head=head))
    start = time.monotonic()
    with pytest.raises(FetchError, match="within timeout 1s after 1 attempts"):
        client(timeout=1.0, retries=0).get_text(slow)
    assert 0.9 < time.monotonic() - start < 1.5  # each byte came in time; the request as a whole did not
    brisk = site.add("/brisk", Reply(body=b"<p>ok</p>", trickle=0.005, trickle_head=head))
    assert client(timeout=2.0, retries=0).get_text(brisk) == "<p>ok</p>"


def test_client_redirects(site):
    site.add("/r/a", Reply(302, headers={"Location": "/r/b"}))
    site.add("/r/b", Reply(301, headers={"Location": site.url + "/r/a"}))
    with pytest.raises(FetchError, match=r"redirect loop \(.*/r/a -> .*/r/b -> .*/r/a\)"):
        client().get_text(site.url + "/r/a")
    assert len(site.hits_of("/r/a")) == 1  # not retried
    self_loop = site.add("/r/self", Reply(307, headers={"Location": "/r/self"}))
    with pytest.raises(FetchError, match="redirect loop"):
        client().get_text(self_loop)
    for i in range(12):
        site.add(f"/r/chain/{i}", Reply(302, headers={"Location": f"/r/chain/{i + 1}"}))
    with pytest.raises(FetchError, match="too many redirects"):
        client(max_redirects=10).get_text(site.url + "/r/chain/0")
    assert len(site.hits_of("/r/chain/10")) == 1 and not site.hits_of("/r/chain/11")
    # a Location in raw UTF-8 bytes, relative: followed as the same bytes percent-encoded
    site.add("/r/to-cafe", Reply(303, headers={"Location": "café/ü".encode().decode("latin-1")}))
    site.add("/r/caf%C3%A9/%C3%BC", Reply(body="<p>arrivé</p>".encode()))
    assert client().get_text(site.url + "/r/to-cafe") == "<p>arrivé</p>"
    elsewhere = site.add("/r/ftp", Reply(301, headers={"Location": "ftp://example.org/x.jpg"}))
    with pytest.raises(FetchError, match=r"redirect to a non-http\(s\) URL"):
        client().get_text(elsewhere)
    no_location = site.add("/r/nowhere", Reply(302))
    with pytest.raises(FetchError, match="HTTP 302"):
        client().get_text(no_location)


def test_client_content_encodings(site, museum_paintings, tmp_path):
    page = "<p>Béla Kádár</p>".encode()
    for coding, body in [("gzip", gzip.compress(page)), ("x-gzip", gzip.compress(page)),
                         ("deflate", zlib.compress(page)), ("deflate", zlib.compress(page)[2:-4])]:  # zlib, raw
        url = site.add(f"/enc/{coding}/{len(body)}", Reply(body=body, headers={"Content-Encoding": coding}))
        assert client().get_text(url) == "<p>Béla Kádár</p>", coding

    image = museum_paintings[0].read_bytes()
    members = gzip.compress(image[:1000]) + gzip.compress(image[1000:])  # gzip allows several members
    url = site.add("/enc/image.jpg", Reply(body=members, content_type="image/jpeg",
                                           headers={"Content-Encoding": "gzip"}))
    done = client().download(url, tmp_path / "image.part", max_bytes=len(image))
    assert (tmp_path / "image.part").read_bytes() == image and done.sha256 == hashlib.sha256(image).hexdigest()

    brotli = site.add("/enc/br", Reply(body=b"\x0b\x02\x80hi\x03", headers={"Content-Encoding": "br"}))
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        client().get_text(brotli)
    bomb = site.add("/enc/bomb", Reply(body=gzip.compress(bytes(20 << 20)), headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="too large"):
        client(max_page_bytes=1 << 20).get_text(bomb)
    cut = site.add("/enc/cut", Reply(body=gzip.compress(page)[:-8], headers={"Content-Encoding": "gzip"}),
                   Reply(body=gzip.compress(page), headers={"Content-Encoding": "gzip"}))
    assert client().get_text(cut) == "<p>Béla Kádár</p>" and len(site.hits_of("/enc/cut")) == 2  # retried


@pytest.mark.parametrize(("body", "content_type", "text"), [
    (b'<meta charset="windows-1252"><h3>Caf\xe9 \x93Nuit\x94</h3>', "text/html", "Café “Nuit”"),
    (b"<META HTTP-EQUIV='content-type' CONTENT='text/html; charset=ISO-8859-1'>\x93\xe0\x94", "text/html", "“à”"),
    (b"<meta charset=shift_jis>" + "富士山".encode("shift_jis"), "text/html", "富士山"),
    ('<meta charset="windows-1252">é'.encode(), "text/html; charset=utf-8", "é"),  # the header wins
    (b"\xef\xbb\xbf\xc3\xa9", "text/html; charset=iso-8859-1", "é"),  # and a byte order mark wins over both
    (b"<p>Caf\xe9</p>", "text/html", "Café"),  # undeclared and not UTF-8: windows-1252
    ("<p>Café</p>".encode(), "text/html", "Café"),  # undeclared: UTF-8
    ("<meta charset=nonsense>Café".encode(), "text/html", "Café"),  # unknown label: as if undeclared
])
def test_client_decodes_pages_in_their_charset(site, body, content_type, text):
    url = site.add("/charset", Reply(body=body, content_type=content_type))
    assert text in client().get_text(url)
