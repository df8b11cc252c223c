"""WikiArt's JSON endpoints (`/<lang>/App/...`, used by public WikiArt retrievers): a second source behind
the interface of `WikiArtSite`, so a change of the HTML layout does not stop the scrape.

Read: the artist index per letter (`/<lang>/alphabet/<letter>/?json=3&layout=new&page=<n>`, pages until one
brings no new artist), the public-domain artist list (`App/Artist/AlphabetJson?inPublicDomain=true`, once),
an artist's paintings (`App/Painting/PaintingsByArtist`) and a painting's details (`App/Painting/ImageJson/<id>`).
Two things differ from the HTML pages: the movement is the painting's `style` (the artist list has none), and
the licence comes from the public-domain artist list (the JSON has no licence per painting).
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from data_modules.scrape.client import HttpClient
from data_modules.scrape.wikiart import ArtistEntry, PaintingPage, WikiArtSite, WorkEntry, absolute_url
from magnet.web.transport import FetchError
from magnet.web.urls import iri_to_uri

_YEAR = re.compile(r"\d{3,4}")
_DOTNET_DATE = re.compile(r"/Date\((-?\d+)\)/")  # milliseconds since 1970, as .NET writes dates in JSON
PUBLIC_DOMAIN = "Public domain"


class WikiArtJson:
    """URLs and readers of WikiArt's JSON endpoints (or of a server shaped like it at `base_url`)."""

    def __init__(self, base_url: str = "https://www.wikiart.org", language: str = "en"):
        self.base_url = iri_to_uri(base_url.rstrip("/") + "/")
        self.language = language
        self._public_domain: frozenset[str] | None = None  # artist slugs
        self._lock = threading.Lock()

    def index_url(self, letter: str, page: int = 1) -> str:
        return urljoin(self.base_url, f"{self.language}/alphabet/{letter}/?json=3&layout=new&page={page}")

    def works_url(self, artist_url: str) -> str:
        return self._app(f"Painting/PaintingsByArtist?artistUrl={_slug(artist_url)}&json=2")

    def index(self, client: HttpClient, letter: str) -> list[ArtistEntry]:
        """The letter's artists over all its pages, each marked as in the public-domain list or not."""
        public_domain = self._public_domain_slugs(client)
        artists: dict[str, ArtistEntry] = {}
        for page in itertools.count(1):
            url = self.index_url(letter, page)
            data = client.get_json(url)
            items = data.get("Artists") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise FetchError(url, 'not an artist index (no "Artists" list)')
            new = [a for a in map(self._artist, items) if a and a.url not in artists]
            if not new:  # an empty page ends the index (so does one repeating what came before)
                return list(artists.values())
            for artist in new:
                artists[artist.url] = ArtistEntry(artist.name, artist.url, artist.born, artist.died,
                                                  _slug(artist.url) in public_domain)

    def movements(self, client: HttpClient, artist: ArtistEntry) -> None:
        """Unknown for an artist here: each painting's `style` is its movement."""
        return None

    def works(self, client: HttpClient, artist: ArtistEntry) -> list[WorkEntry]:
        url = self.works_url(artist.url)
        items = client.get_json(url)
        if not isinstance(items, list):
            raise FetchError(url, "not a list of paintings")
        works = []
        for item in items:
            if not isinstance(item, dict) or not _text(item.get("contentId")):
                continue
            image, details = _text(item.get("image")), self._app(f"Painting/ImageJson/{_text(item['contentId'])}")
            works.append(WorkEntry(_text(item.get("title")), details, _painting_year(item),
                                   self._image_url(image) if image else ""))
        return works

    def painting(self, client: HttpClient, work: WorkEntry) -> PaintingPage:
        """A painting's details; its licence is the artist's (the scraper reads the public-domain ones only)."""
        data = client.get_json(work.url)
        if not isinstance(data, dict):
            raise FetchError(work.url, "not a painting's details")
        image = _text(data.get("image"))
        return PaintingPage(
            title=_text(data.get("title")),
            artist=_text(data.get("artistName")),
            year=_painting_year(data),
            style=_text(data.get("style")),
            license=PUBLIC_DOMAIN,
            image_url=self._image_url(image) if image else work.image_url,
        )

    def _public_domain_slugs(self, client: HttpClient) -> frozenset[str]:
        with self._lock:  # one request for the whole run
            if self._public_domain is None:
                url = self._app("Artist/AlphabetJson?v=new&inPublicDomain=true")
                items = client.get_json(url)
                if not isinstance(items, list):
                    raise FetchError(url, "not a list of artists")
                self._public_domain = frozenset(_text(i.get("url")) for i in items if isinstance(i, dict))
            return self._public_domain

    def _artist(self, item) -> ArtistEntry | None:
        """An index item as an artist; None without a page or a birth year (as the HTML index's menu links)."""
        if not isinstance(item, dict):
            return None
        slug = _slug(_text(item.get("artistUrl")) or _text(item.get("url")))
        born = _life_year(item, "birthDay")
        if not slug or born is None:
            return None
        url = absolute_url(self.base_url, f"{self.language}/{slug}")
        name = _text(item.get("artistName")) or _text(item.get("title")) or slug
        return ArtistEntry(name, url, born, _life_year(item, "deathDay"))

    def _app(self, path: str) -> str:
        return urljoin(self.base_url, f"{self.language}/App/{path}")

    def _image_url(self, image: str) -> str:
        return WikiArtSite.original_image_url(absolute_url(self.base_url, image) or image)


def _text(value) -> str:
    return "" if value is None else " ".join(str(value).split())


def _slug(url: str) -> str:
    """The last path segment: an artist's page name (`/en/henri-matisse` -> `henri-matisse`)."""
    return urlsplit(url).path.rstrip("/").rpartition("/")[2]


def _life_year(item: dict, key: str) -> int | None:
    """The year of `birthDay`/`deathDay`: from its `...AsString` ("March 26, 1864"), else its .NET date."""
    found = _YEAR.search(_text(item.get(f"{key}AsString")))
    if found:
        return int(found.group())
    dotnet = _DOTNET_DATE.search(_text(item.get(key)))
    if dotnet:
        return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(dotnet.group(1)))).year
    return None


def _painting_year(item: dict) -> str:
    return _text(item.get("yearAsString")) or _text(item.get("completitionYear"))  # sic: WikiArt's spelling
