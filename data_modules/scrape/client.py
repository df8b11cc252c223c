"""A polite HTTP client on the standard library: shared request rate, retries with backoff, 429/Retry-After,
keep-alive connections, robots.txt, and a User-Agent that names the project and who runs it.

Every worker thread shares one client, so the request rate, a server's "slow down" and the pool of open
connections apply to all of them. Any URL it is given is sent as a URI (non-ASCII percent-encoded, IDNA host);
the wire work is in `magnet.web.transport`.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import itertools
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from data_modules.scrape.charset import decode_html
from data_modules.scrape.robots import Robots
from magnet.checks import check_bool, check_float, check_int
from magnet.errors import ConfigError
from magnet.web.transport import ConnectionPool, Deadline, FetchError, body_chunks, content_coding, open_url
from magnet.web.urls import iri_to_uri

log = logging.getLogger(__name__)

# an e-mail address or an http(s) URL, printable ASCII without spaces (it goes into a header)
_CONTACT = re.compile(r"[!-~]+@[!-~]+\.[!-~]+|https?://[!-~]+")


def check_contact(key: str, value) -> None:
    """null, or an e-mail address or http(s) URL a site's admins can write to about the crawler."""
    if value is not None and (not isinstance(value, str) or not _CONTACT.fullmatch(value)):
        raise ConfigError(key, value, "null or an e-mail address or http(s) URL where a site's admins can reach "
                                      "you (printable ASCII, no spaces)")


def user_agent(contact: str | None) -> str:
    """`magnet-scraper/<version> (+<contact>)`: the project, its version, and who to tell when it misbehaves."""
    try:
        version = importlib.metadata.version("magnet")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "dev"
    return f"magnet-scraper/{version}" + (f" (+{contact})" if contact else "")


class _Retryable(Exception):
    """A failure worth another try (timeout, reset, 5xx, 429, short body), with an optional wait hint."""

    def __init__(self, reason: str, wait: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.status = status


@dataclass(frozen=True)
class Download:
    """What `HttpClient.download` wrote: content type, size and SHA-256 of the bytes."""

    content_type: str
    size: int
    sha256: str


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay seconds or an HTTP date (RFC 9110); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class RateLimiter:
    """Spaces request starts at least 1/rate seconds apart across threads; `pause` delays everyone."""

    def __init__(self, requests_per_second: float | None):
        self.interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)

    def slow_to(self, interval: float) -> None:
        """At least `interval` seconds between request starts from now on."""
        with self._lock:
            self.interval = max(self.interval, interval)


class HttpClient:
    """GET pages and files with a User-Agent, a shared rate, retries on transient failures and size caps,
    over one pool of keep-alive connections, asking robots.txt first (unless told not to)."""

    def __init__(
        self,
        contact: str | None = None,
        obey_robots_txt: bool = True,
        requests_per_second: float | None = 1.5,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
        max_redirects: int = 10,
        max_page_bytes: int = 10 << 20,
    ):
        check_contact("contact", contact)
        check_bool("obey_robots_txt", obey_robots_txt)
        check_float("requests_per_second", requests_per_second, above=0, optional=True)
        check_float("timeout", timeout, above=0)
        for name, value in (("retries", retries), ("max_redirects", max_redirects)):
            check_int(name, value, at_least=0)
        check_int("max_page_bytes", max_page_bytes, at_least=1)
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff), ("max_retry_after", max_retry_after)):
            check_float(name, value, at_least=0)
        self.headers = {"User-Agent": user_agent(contact), "Accept-Encoding": "gzip, deflate"}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_redirects = max_redirects
        self.max_page_bytes = max_page_bytes
        self.limiter = RateLimiter(requests_per_second)
        self.pool = ConnectionPool()
        self.robots = Robots(self.headers["User-Agent"], self._robots_txt, self._pace) if obey_robots_txt else None

    def close(self) -> None:
        """Close the idle connections."""
        self.pool.close()

    def get_text(self, url: str) -> str:
        """The body of an HTML page, decoded with its declared charset (see `decode_html`)."""
        return self._with_retries(url, self._read_text)

    def get_json(self, url: str):
        """The body of a JSON reply, parsed; FetchError if it is not JSON."""
        text = self.get_text(url)
        try:
            return json.loads(text)
        except ValueError as e:
            raise FetchError(url, f"not JSON ({e})") from None

    def _read_text(self, response, url: str) -> str:
        body = b"".join(self._capped(response, url, self.max_page_bytes))
        return decode_html(body, response.headers.get_content_charset())

    def _robots_txt(self, url: str) -> str:
        return self._with_retries(url, self._read_text, ask_robots=False)

    def _pace(self, robots_url: str, seconds: float) -> None:
        """A site's robots.txt asks for `seconds` between requests: the shared pace follows it (for every site)."""
        if seconds > self.limiter.interval:
            log.warning("%s asks for %gs between requests: pacing every request to that", robots_url, seconds)
            self.limiter.slow_to(seconds)

    def download(self, url: str, dest: Path, max_bytes: int) -> Download:
        """Stream `url` into `dest` (created or overwritten), refusing non-images and bodies over `max_bytes`."""

        def read(response, url: str) -> Download:
            content_type = response.headers.get_content_type()
            if not content_type.startswith("image/"):
                raise FetchError(url, f"not an image (Content-Type {content_type})")
            digest, size = hashlib.sha256(), 0
            with open(dest, "wb") as f:
                for chunk in self._capped(response, url, max_bytes):
                    size += len(chunk)
                    digest.update(chunk)
                    f.write(chunk)
            return Download(content_type, size, digest.hexdigest())

        return self._with_retries(url, read)

    @staticmethod
    def _capped(response, url: str, max_bytes: int) -> Iterator[bytes]:
        """The decoded body, refused as soon as it is known to exceed `max_bytes`."""
        declared = _content_length(response.headers)
        if declared is not None and declared > max_bytes and content_coding(response) == "identity":
            raise FetchError(url, f"too large ({declared} bytes > max_bytes {max_bytes})")
        size = 0
        for chunk in body_chunks(response, url):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(url, f"too large (over max_bytes {max_bytes})")
            yield chunk

    def _with_retries(self, url: str, read, ask_robots: bool = True):
        """`read(response, uri)` of the first good reply; FetchError once it is clear there will be none
        (`Disallowed` if robots.txt forbids it)."""
        try:
            uri = iri_to_uri(url)
        except ValueError as e:
            raise FetchError(url, f"invalid URL ({e})") from None
        if ask_robots and self.robots:
            self.robots.check(uri)
        for attempt in itertools.count():
            self.limiter.wait()
            try:
                return self._attempt(uri, read)
            except _Retryable as e:
                if attempt == self.retries:
                    raise FetchError(uri, f"{e.reason} after {self.retries + 1} attempts", e.status) from None
                wait = e.wait if e.wait is not None else self._backoff(attempt)
                log.info("retrying %s in %.2fs: %s", uri, wait, e.reason)
                if e.wait is not None:
                    self.limiter.pause(wait)  # the server asked every client of it to slow down
                time.sleep(wait)

    def _attempt(self, uri: str, read):
        with Deadline(self.timeout) as deadline:
            try:
                with open_url(uri, self.headers, deadline, self.max_redirects, self.pool) as response:
                    if response.status >= 300:  # a redirect without Location, or an error
                        raise self._classify(uri, response)
                    result = read(response, uri)
            except Exception as e:
                if deadline.expired:  # whatever the cut-off read looked like
                    raise _Retryable(f"no whole reply within timeout {self.timeout:g}s") from None
                if isinstance(e, (TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError)):
                    raise _Retryable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
                raise
            if deadline.expired:  # a body without Content-Length ends where the deadline cut it
                raise _Retryable(f"no whole reply within timeout {self.timeout:g}s")
            return result

    def _classify(self, uri: str, response: http.client.HTTPResponse) -> Exception:
        code = response.status
        if code == 429 or code >= 500:
            wait = retry_after_seconds(response.getheader("Retry-After"))
            if wait is not None:
                wait = min(wait, self.max_retry_after)
            return _Retryable(f"HTTP {code}", wait, code)
        return FetchError(uri, f"HTTP {code}", code)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so threads that failed together do not retry together."""
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)


def _content_length(headers: Message) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None
