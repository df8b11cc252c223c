"""Everything that knows WikiArt's HTML pages: when their layout changes, only this file changes (and
`scrape.source=json` reads the site through `wikiart_json` meanwhile).

A source (this one, `WikiArtJson`) names its listing URLs (`index_url`, `works_url`) and reads, through the
scraper's client, an index letter's artists, an artist's movements, an artist's works and a painting's details.
Pages read: the artist index per letter (`/en/Alphabet/<letter>/text-list`), an artist's page (its
"Art Movement:" field), the artist's works list (`<artist>/all-works/text-list`) and a painting's page
(title, "Date:", "Style:", licence, and the `og:image` URL whose `!Large.jpg`-style suffix is dropped).
Every URL handed out is absolute and in URI form (see `iri_to_uri`), so equal links compare equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from data_modules.scrape.client import HttpClient
from magnet.web.urls import iri_to_uri

_LIFE_DATES = re.compile(r"(\d{3,4})\s*[-\u2013]\s*(\d{3,4})?")
_YEAR = re.compile(r"\d{3,4}")


@dataclass(frozen=True)
class ArtistEntry:
    """One line of the artist index: name, page URL, life dates (`died` is None for a living artist), and
    whether their works are in the public domain (None: the index does not say)."""

    name: str
    url: str
    born: int
    died: int | None
    public_domain: bool | None = None


@dataclass(frozen=True)
class WorkEntry:
    """One line of an artist's works list (`image_url`: the original image, when the list gives it)."""

    title: str
    url: str
    year: str
    image_url: str = ""


@dataclass(frozen=True)
class PaintingPage:
    """What a painting's page says about it; `image_url` is the original (full-size) image."""

    title: str
    artist: str
    year: str
    style: str
    license: str
    image_url: str


@dataclass
class _ListItem:
    text: list[str] = field(default_factory=list)
    link: tuple[str, str] | None = None  # first link: (href, text)


class _PageParser(HTMLParser):
    """One pass over a page collecting what the parsers below pick from: list items, labelled fields, meta."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items: list[_ListItem] = []
        self.fields: dict[str, list[str]] = {}  # "Art Movement" -> ["Expressionism", ...] (link texts or text)
        self.meta: dict[str, str] = {}
        self.h3 = ""
        self.creator = ""
        self.copyright = ""
        self._li: list[_ListItem] = []  # open <li> elements, innermost last
        self._a: list[str] | None = None  # text of the open link
        self._a_href = ""
        self._label: list[str] | None = None  # text of an open <s> label
        self._field: str | None = None  # the label whose value is being read
        self._field_text: list[str] = []
        self._field_links: list[str] = []
        self._capture: dict[str, list[str]] = {}  # "h3" / "creator" / "copyright" -> text while open
        self._stack: list[tuple[str, str | None]] = []  # (tag, capture key) of open elements

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        key = None
        if tag == "meta" and (attrs.get("property") or attrs.get("name")):
            self.meta[attrs.get("property") or attrs.get("name")] = attrs.get("content") or ""
            return
        if tag == "li":
            self._finish_field()
            self._li.append(_ListItem())
        elif tag == "a":
            self._a, self._a_href = [], attrs.get("href") or ""
        elif tag == "s":
            self._finish_field()
            self._label = []
        elif tag == "h3" and not self.h3:
            key = "h3"
        elif attrs.get("itemprop") == "creator" and not self.creator:
            key = "creator"
        elif "copyright" in (attrs.get("class") or "") and not self.copyright:
            key = "copyright"
        if key:
            self._capture[key] = []
        if tag not in ("br", "img", "input", "link", "hr"):
            self._stack.append((tag, key))

    def handle_endtag(self, tag):
        if tag == "a" and self._a is not None:
            text = _clean("".join(self._a))
            if self._li and self._li[-1].link is None:
                self._li[-1].link = (self._a_href, text)
            if self._field is not None and text:
                self._field_links.append(text)
            self._a = None
        elif tag == "s" and self._label is not None:
            self._field, self._field_text, self._field_links = _clean("".join(self._label)).rstrip(":"), [], []
            self._label = None
        elif tag == "li":
            self._finish_field()
            if self._li:
                self.items.append(self._li.pop())
        while self._stack:
            open_tag, key = self._stack.pop()
            if key:
                setattr(self, key, _clean("".join(self._capture.pop(key))))
            if open_tag == tag:
                break

    def handle_data(self, data):
        for target in (self._a, self._label):
            if target is not None:
                target.append(data)
        if self._label is None and self._field is not None:
            self._field_text.append(data)
        if self._li:
            self._li[-1].text.append(data)
        for texts in self._capture.values():
            texts.append(data)

    def _finish_field(self):
        if self._field is not None:
            text = _clean("".join(self._field_text))
            self.fields[self._field] = self._field_links or ([text] if text else [])
            self._field = None


def _clean(text: str) -> str:
    return " ".join(text.split())


def absolute_url(base: str, href: str) -> str | None:
    """`href` resolved against `base` in URI form; as written if it cannot be encoded (the client will say why
    it cannot be fetched), None if it cannot even be parsed."""
    try:
        url = urljoin(base, href)
    except ValueError:
        return None
    try:
        return iri_to_uri(url)
    except ValueError:
        return url


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


class WikiArtSite:
    """URLs and page parsers of WikiArt (or of a server shaped like it at `base_url`)."""

    def __init__(self, base_url: str = "https://www.wikiart.org", language: str = "en"):
        self.base_url = iri_to_uri(base_url.rstrip("/") + "/")
        self.language = language

    def index_url(self, letter: str) -> str:
        return urljoin(self.base_url, f"{self.language}/Alphabet/{letter}/text-list")

    def works_url(self, artist_url: str) -> str:
        return artist_url.rstrip("/") + "/all-works/text-list"

    def index(self, client: HttpClient, letter: str) -> list[ArtistEntry]:
        url = self.index_url(letter)
        return self.parse_index(client.get_text(url), url)

    def movements(self, client: HttpClient, artist: ArtistEntry) -> list[str]:
        return self.parse_movements(client.get_text(artist.url))

    def works(self, client: HttpClient, artist: ArtistEntry) -> list[WorkEntry]:
        return self.parse_works(client.get_text(self.works_url(artist.url)), artist.url)

    def painting(self, client: HttpClient, work: WorkEntry) -> PaintingPage:
        return self.parse_painting(client.get_text(work.url), work.url)

    def parse_index(self, html: str, page_url: str) -> list[ArtistEntry]:
        """Artists of an index page: each list item links to the artist and ends with ", born - died"."""
        artists = []
        for item in _parse(html).items:
            url = item.link and absolute_url(page_url, item.link[0])
            if not url or not self._is_site_page(url, depth=2):
                continue
            dates = _LIFE_DATES.search("".join(item.text).replace(item.link[1], "", 1))
            if dates is None:  # menus and other links; every artist line carries its dates
                continue
            died = int(dates.group(2)) if dates.group(2) else None
            artists.append(ArtistEntry(item.link[1], url, int(dates.group(1)), died))
        return artists

    def parse_movements(self, html: str) -> list[str]:
        """The artist page's "Art Movement:" values."""
        return _parse(html).fields.get("Art Movement", [])

    def parse_works(self, html: str, artist_url: str) -> list[WorkEntry]:
        """Paintings of a works list: list items linking to `<artist page>/<painting>`, then ", year"."""
        page_url = self.works_url(artist_url)
        artist_path = urlsplit(artist_url).path.rstrip("/") + "/"
        works = []
        for item in _parse(html).items:
            url = item.link and absolute_url(page_url, item.link[0])
            if not url or not self._is_site_page(url, depth=3):
                continue
            path = urlsplit(url).path
            if not path.startswith(artist_path) or path.rstrip("/").endswith("/all-works"):
                continue
            year = _YEAR.search("".join(item.text).replace(item.link[1], "", 1))
            works.append(WorkEntry(item.link[1], url, year.group(0) if year else ""))
        return works

    def parse_painting(self, html: str, page_url: str) -> PaintingPage:
        """A painting's details; the licence comes from the "Copyright:"/"License:" field or copyright block."""
        page = _parse(html)
        image = page.meta.get("og:image", "").strip()
        licence = page.fields.get("Copyright") or page.fields.get("License") or [page.copyright]
        return PaintingPage(
            title=page.h3 or page.meta.get("og:title", ""),
            artist=page.creator,
            year=", ".join(page.fields.get("Date", [])),
            style=", ".join(page.fields.get("Style", [])),
            license=", ".join(licence),
            image_url=self.original_image_url(absolute_url(page_url, image) or image) if image else "",
        )

    @staticmethod
    def original_image_url(url: str) -> str:
        """Drop WikiArt's size suffix: `.../work.jpg!Large.jpg` -> `.../work.jpg`."""
        return url.split("!", 1)[0]

    def _is_site_page(self, url: str, depth: int) -> bool:
        """A page of this site `depth` path segments deep, in our language (`/en/x` is depth 2)."""
        parts = urlsplit(url)
        segments = [p for p in parts.path.split("/") if p]
        on_site = parts.netloc == urlsplit(self.base_url).netloc
        return on_site and len(segments) == depth and segments[0] == self.language
