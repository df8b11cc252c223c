"""A polite HTTP client on the standard library: shared request rate, retries with backoff, 429/Retry-After.

Every worker thread shares one client, so the request rate and a server's "slow down" apply to all of them.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

log = logging.getLogger(__name__)


class FetchError(Exception):
    """A URL that could not be fetched; `reason` says why in a few words."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class _Retryable(Exception):
    """A failure worth another try (timeout, reset, 5xx, 429, short body), with an optional wait hint."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


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


class HttpClient:
    """GET pages and files with a User-Agent, a shared rate, retries on transient failures and a size cap."""

    def __init__(
        self,
        user_agent: str,
        requests_per_second: float | None = 5.0,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
    ):
        self.user_agent = user_agent
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.limiter = RateLimiter(requests_per_second)

    def get_text(self, url: str) -> str:
        """The body of an HTML page, decoded with its declared charset (UTF-8 when none)."""

        def read(response) -> str:
            charset = response.headers.get_content_charset() or "utf-8"
            return response.read().decode(charset, errors="replace")

        return self._with_retries(url, read)

    def download(self, url: str, dest: Path, max_bytes: int) -> Download:
        """Stream `url` into `dest` (created or overwritten), refusing non-images and bodies over `max_bytes`."""

        def read(response) -> Download:
            content_type = response.headers.get_content_type()
            if not content_type.startswith("image/"):
                raise FetchError(url, f"not an image (Content-Type {content_type})")
            declared = _content_length(response.headers)
            if declared is not None and declared > max_bytes:
                raise FetchError(url, f"too large ({declared} bytes > max_bytes {max_bytes})")
            digest, size = hashlib.sha256(), 0
            with open(dest, "wb") as f:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(url, f"too large (over max_bytes {max_bytes})")
                    digest.update(chunk)
                    f.write(chunk)
            if declared is not None and size < declared:
                raise _Retryable(f"body cut short ({size} of {declared} bytes)")
            return Download(content_type, size, digest.hexdigest())

        return self._with_retries(url, read)

    def _with_retries(self, url: str, read):
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        for attempt in itertools.count():
            self.limiter.wait()
            try:
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout) as response:
                        return read(response)
                except urllib.error.HTTPError as e:
                    raise self._classify(url, e) from None
                except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
                    raise _Retryable(type(e).__name__) from None
                except urllib.error.URLError as e:
                    if isinstance(e.reason, (TimeoutError, socket.timeout, ConnectionError)):
                        raise _Retryable(f"{type(e.reason).__name__}") from None
                    raise FetchError(url, f"cannot connect ({e.reason})") from None
            except _Retryable as e:
                if attempt == self.retries:
                    raise FetchError(url, f"{e.reason} after {self.retries + 1} attempts") from None
                wait = e.wait if e.wait is not None else self._backoff(attempt)
                log.info("retrying %s in %.2fs: %s", url, wait, e.reason)
                if e.wait is not None:
                    self.limiter.pause(wait)  # the server asked every client of it to slow down
                time.sleep(wait)

    def _classify(self, url: str, error: urllib.error.HTTPError) -> Exception:
        code = error.code
        if code == 429 or code >= 500:
            wait = retry_after_seconds(error.headers.get("Retry-After"))
            if wait is not None:
                wait = min(wait, self.max_retry_after)
            return _Retryable(f"HTTP {code}", wait)
        return FetchError(url, f"HTTP {code}")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so threads that failed together do not retry together."""
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)


def _content_length(headers: Message) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None
