"""Google Drive's large files: instead of the file, Drive first answers with a page saying it cannot scan the
file for viruses, and the download goes on through that page's form (or, on older pages, a confirm token set
as a `download_warning` cookie)."""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit


class _DownloadForm(HTMLParser):
    """The action and the named fields of the page's `<form id="download-form">`."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "download-form":
            self.action, self._inside = attrs.get("action") or "", True
        elif tag == "input" and self._inside and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to (or replacing those of) its query."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | params
    return urlunsplit(parts._replace(query=urlencode(query)))


def past_warning(url: str, page: str, set_cookies: Iterable[str]) -> tuple[str, dict[str, str]] | None:
    """The URL and extra headers that fetch the file behind Drive's warning `page` (got from `url`, with these
    Set-Cookie headers); None when the page offers no way on (quota exceeded, not shared, not Drive at all)."""
    form = _DownloadForm()
    form.feed(page)
    if form.action is not None:
        return with_query(urljoin(url, form.action), **form.fields), {}
    for header in set_cookies:
        try:
            cookies = SimpleCookie(header)
        except CookieError:
            continue
        for name, morsel in cookies.items():
            if name.startswith("download_warning"):
                return with_query(url, confirm=morsel.value), {"Cookie": f"{name}={morsel.value}"}
    return None
