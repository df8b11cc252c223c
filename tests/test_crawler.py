"""The crawler's manners against a real HTTP/1.1 server on 127.0.0.1: one pool of keep-alive connections for
all worker threads, one pace for all of them, robots.txt, a User-Agent naming the project and a contact, and
its settings refused on one line."""

from __future__ import annotations

import importlib.metadata
import inspect
import math
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hydra import compose, initialize_config_dir
from test_scrape import CONTACT, REPO, FakeWikiArt, Reply, add_artist, client, index_page, jpeg, scrape_cfg

from data_modules.files import read_csv
from data_modules.prepare import prepare
from data_modules.scrape import scrape
from data_modules.scrape.client import FetchError, HttpClient
from data_modules.scrape.robots import Disallowed
from magnet.errors import ConfigError, UserError
from magnet.web import transport

VERSION = importlib.metadata.version("magnet")


@pytest.fixture
def site():
    server = FakeWikiArt()
    yield server
    server.close()


def compose_prepare(*overrides: str):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("prepare", overrides=list(overrides))


def free_port() -> int:
    """A port nobody listens on (bound, read and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_pool_of_keep_alive_connections_serves_every_thread(site, museum_paintings, tmp_path):
    pages = [site.add(f"/page/{i}", Reply(body=f"<p>{i}</p>".encode())) for i in range(40)]
    missing = site.add("/missing", Reply(404, b"no such page"))
    moved = site.add("/moved", Reply(301, headers={"Location": "/page/0"}))
    image = museum_paintings[0].read_bytes()
    image_url = site.add("/image.jpg", jpeg(museum_paintings[0]))
    shared = client()

    def work(thread: int) -> None:
        for i in range(thread, 40, 4):
            assert shared.get_text(pages[i]) == f"<p>{i}</p>"
        with pytest.raises(FetchError, match="HTTP 404"):  # an error page is read to its end, not a reason to hang up
            shared.get_text(missing)
        assert shared.get_text(moved) == "<p>0</p>"  # the redirect and its target on one connection
        shared.download(image_url, tmp_path / f"{thread}.part", max_bytes=len(image))
        assert (tmp_path / f"{thread}.part").read_bytes() == image

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert len(site.hits) == 40 + 4 * 4
    assert site.connections <= 4  # at most one per thread, not one per request

    # A body left unread (refused as too large) closes its connection: the next reply is read from a clean one.
    with pytest.raises(FetchError, match="too large"):
        shared.download(image_url, tmp_path / "big.part", max_bytes=1000)
    assert [shared.get_text(pages[i]) for i in (1, 2)] == ["<p>1</p>", "<p>2</p>"]
    assert site.connections <= 5


@pytest.mark.parametrize("seen_idle", [True, False], ids=["closed-while-idle", "closed-found-on-send"])
def test_a_connection_the_server_hung_up_is_replaced_without_a_retry(site, monkeypatch, seen_idle):
    if not seen_idle:  # the server's close not yet visible when the connection is taken again
        monkeypatch.setattr(transport, "_dropped", lambda connection: False)
    urls = [site.add(f"/bye/{i}", Reply(body=f"<p>{i}</p>".encode(), hang_up=True)) for i in range(5)]
    once = client(retries=0)
    assert [once.get_text(url) for url in urls] == [f"<p>{i}</p>" for i in range(5)]
    assert site.connections == 5 and len(site.hits) == 5


def fetch_all(fetch, urls: list[str], threads: int = 4) -> float:
    """Seconds to fetch every URL from `threads` threads at once."""
    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        assert set(pool.map(fetch, urls)) == {"<p>ok</p>"}
    return time.monotonic() - start


def test_the_shared_pace_holds_across_threads(site):
    rate, n = 10.0, 9
    urls = [site.add(f"/paced/{i}", Reply(body=b"<p>ok</p>")) for i in range(n)]
    assert fetch_all(client(requests_per_second=rate).get_text, urls) >= (n - 1) / rate  # 9 at 10/s from 4 threads
    assert len(site.hits) == n


def test_the_default_pace_stays_under_wikiarts_block():
    rate = compose_prepare().scrape.http.requests_per_second
    assert inspect.signature(HttpClient).parameters["requests_per_second"].default == rate
    # WikiArt blocks above 10 requests in 5 s: requests 1/rate apart put floor(5 rate) + 1 in a closed 5 s window
    assert 0 < rate <= 2 and math.floor(5 * rate) + 1 <= 10


def test_user_agent_names_the_project_and_the_contact(site):
    url = site.add("/ua", Reply(body=b"ok"))
    client().get_text(url)
    client(contact=None).get_text(url)
    assert [h.user_agent for h in site.hits] == [f"magnet-scraper/{VERSION} (+{CONTACT})", f"magnet-scraper/{VERSION}"]


@pytest.mark.parametrize(("override", "expected"), [
    ("scrape.source=xml", "scrape.source='xml': must be one of html, json"),
    ("scrape.source=JSON", "scrape.source='JSON': must be one of html, json"),
    ("scrape.http.contact=me", "scrape.http.contact='me': must be null or an e-mail address or http(s) URL"),
    ("scrape.http.contact='me @example.org'", "scrape.http.contact='me @example.org': must be null or an e-mail"),
    ("scrape.http.contact=ftp://example.org", "scrape.http.contact='ftp://example.org': must be null or an e-mail"),
    ("scrape.http.contact=''", "scrape.http.contact='': must be null or an e-mail"),
    ("scrape.http.contact=42", "scrape.http.contact=42: must be null or an e-mail"),
    ("scrape.http.contact='moi@bücher.example'", "scrape.http.contact='moi@bücher.example': must be null or an e-mail"),
    ("scrape.http.requests_per_second=0", "scrape.http.requests_per_second=0: must be null or a number > 0"),
    ("scrape.http.requests_per_second=-2", "scrape.http.requests_per_second=-2: must be null or a number > 0"),
    ("scrape.http.requests_per_second=fast", "scrape.http.requests_per_second='fast': must be null or a number > 0"),
    ("scrape.http.requests_per_second=inf", "scrape.http.requests_per_second=inf: must be null or a number > 0"),
    ("scrape.http.obey_robots_txt=maybe", "scrape.http.obey_robots_txt='maybe': must be true or false"),
])
def test_bad_crawler_settings_are_refused_on_one_line(override, expected, tmp_path):
    cfg = compose_prepare(f"root={tmp_path}", "stage=scrape", override)
    with pytest.raises(ConfigError) as err:
        prepare(cfg)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)
    assert not (tmp_path / "paintings").exists()


def test_a_contact_cannot_smuggle_a_header():
    with pytest.raises(ConfigError, match=r"^contact='me@example.org\\r\\nX-Evil: 1': must be"):
        HttpClient(contact="me@example.org\r\nX-Evil: 1")


ROBOTS = b"""User-agent: otherbot
Disallow: /

User-agent: magnet-scraper
Disallow: /en/private-painter
Disallow: /img/secret/

User-agent: *
Disallow: /en/
"""


def test_scrape_honours_robots_txt_and_records_what_it_forbids(site, museum_paintings, tmp_path):
    images = site.url.replace("127.0.0.1", "localhost")  # another site: its own robots.txt
    site.add("/robots.txt", Reply(body=ROBOTS, content_type="text/plain"))
    site.add("/en/Alphabet/e/text-list", Reply(body=index_page([
        ("/en/ernst-ok", "Ernst Ok", "1880 - 1940"), ("/en/private-painter", "Private Painter", "1880 - 1940")])))
    add_artist(site, "/en/ernst-ok", "Ernst Ok", [
        ("w0", "Work 0", f"{images}/img/w0.jpg"), ("w1", "Work 1", f"{images}/img/w1.jpg"),
        ("hidden", "Hidden", f"{images}/img/secret/hidden.jpg")])
    add_artist(site, "/en/private-painter", "Private Painter", [("p", "P", "/img/p.jpg")])
    for i, name in enumerate(["w0", "w1", "secret/hidden", "p"]):
        site.add(f"/img/{name}.jpg", jpeg(museum_paintings[i]))

    summary = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=e", "scrape.workers=4",
                                  "scrape.http.obey_robots_txt=true"))

    assert (summary.artists_kept, summary.found, summary.downloaded, summary.failed, summary.disallowed) == (
        1, 3, 2, 0, 2)
    forbidden = {site.url + "/en/private-painter", images + "/img/secret/hidden.jpg"}
    reasons = dict(summary.failures)
    assert set(reasons) == forbidden and all("disallowed by" in reason for reason in reasons.values())
    assert {row["url"] for row in read_csv(tmp_path / "paintings" / "failures.csv")} == forbidden
    assert not site.hits_of("/en/private-painter") and not site.hits_of("/img/secret/hidden.jpg")
    assert len(site.hits_of("/robots.txt")) == 2  # once per site (two host names), however many requests
    assert site.connections <= 2 * 4  # robots.txt and all came through the pool: per site, one per thread


@pytest.mark.parametrize(("reply", "allowed"), [
    (Reply(404, b"no robots.txt"), True), (Reply(410, b"gone"), True),
    (Reply(401, b"who are you?"), False), (Reply(403, b"go away"), False),
    (Reply(body=b"User-agent: *\nDisallow: /page\n", content_type="text/plain"), False),
    (Reply(body=b"User-agent: *\nDisallow: /other\n", content_type="text/plain"), True),
], ids=["404", "410", "401", "403", "rule", "other-rule"])
def test_robots_txt_status_conventions(site, reply, allowed):
    site.add("/robots.txt", reply)
    page = site.add("/page", Reply(body=b"<p>ok</p>"))
    polite = client(obey_robots_txt=True)
    for _ in range(3):
        if allowed:
            assert polite.get_text(page) == "<p>ok</p>"
        else:
            with pytest.raises(Disallowed, match=f"disallowed by {site.url}/robots.txt for magnet-scraper/"):
                polite.get_text(page)
    assert len(site.hits_of("/robots.txt")) == 1 and len(site.hits_of("/page")) == (3 if allowed else 0)

    assert client(obey_robots_txt=False).get_text(page) == "<p>ok</p>"  # told to ignore it: never asked
    assert len(site.hits_of("/robots.txt")) == 1


def test_a_site_whose_robots_txt_cannot_be_read_stops_the_scrape_on_one_line(site, tmp_path):
    site.add("/robots.txt", Reply(503, b"down"))
    with pytest.raises(UserError) as err:
        scrape(**scrape_cfg(site.url, tmp_path, "scrape.http.obey_robots_txt=true", "scrape.http.retries=2"))
    message = str(err.value)
    assert message.startswith(f"{site.url}/robots.txt cannot be read (HTTP 503 after 3 attempts)")
    assert "scrape.base_url" in message and "\n" not in message
    assert [h.path for h in site.hits] == ["/robots.txt"] * 3

    # A dead server, through the command line: one line and exit status 2.
    dead = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "data_modules.prepare", "stage=scrape", f"root={tmp_path}", f"scrape.base_url={dead}",
         "scrape.http.retries=1", "scrape.http.backoff=0.01", f"hydra.run.dir={tmp_path}/hydra"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[-1].startswith(f"error: {dead}/robots.txt cannot be read (") and "Connection refused" in lines[-1]


@pytest.mark.parametrize(("rule", "n", "interval"), [("Request-rate: 5/1", 4, 0.2), ("Crawl-delay: 1", 2, 1.0)])
def test_robots_txt_pace_slows_the_shared_pace(site, rule, n, interval):
    site.add("/robots.txt", Reply(body=f"User-agent: magnet-scraper\n{rule}\n".encode(), content_type="text/plain"))
    urls = [site.add(f"/slow/{i}", Reply(body=b"<p>ok</p>")) for i in range(n)]
    polite = client(obey_robots_txt=True, requests_per_second=None)
    assert fetch_all(polite.get_text, urls) >= (n - 1) * interval
    assert len(site.hits) == n + 1


def test_a_deadline_is_expired_once_its_time_is_up_whoever_notices_first():
    # A socket's own timeout (set to the time left) can end a read before the deadline's timer fires: the
    # caller must still read that failure as the deadline's, not as a plain timeout.
    deadline = transport.Deadline(0.05)
    assert not deadline.expired
    time.sleep(0.08)
    assert deadline.expired  # nothing was watched, so no timer fired
    with pytest.raises(TimeoutError):
        deadline.remaining()
