"""One HTTP GET on the wire: a connection per request, redirects followed, a whole-request deadline, and the
body's Content-Encoding (gzip, deflate) undone. Policy (rate, retries, what counts as failure) is the client's.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from data_modules.scrape.urls import iri_to_uri

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 1 << 16


class FetchError(Exception):
    """A URL that could not be fetched; `reason` says why in a few words."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class Deadline:
    """A time limit for a whole request: connect, headers and body together, however slowly bytes trickle.

    Each connect step waits at most the time left; once connected, a timer shuts the socket down when the time
    is up, which ends any read blocked on it. `expired` then tells that short or failed read from a real one.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._timers: list[threading.Timer] = []
        self.expired = False

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError(f"deadline of {self.seconds:g}s passed")
        return left

    def watch(self, sock: socket.socket) -> None:
        timer = threading.Timer(self.remaining(), self._expire, (sock,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _expire(self, sock: socket.socket) -> None:
        self.expired = True
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
        except OSError:  # already closed
            pass

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc) -> None:
        for timer in self._timers:
            timer.cancel()


@contextmanager
def open_url(url: str, headers: Mapping[str, str], deadline: Deadline,
             max_redirects: int) -> Iterator[http.client.HTTPResponse]:
    """GET `url` (already a URI), following up to `max_redirects` redirects; yields the final response."""
    chain = [url]
    while True:
        connection, response = _get(chain[-1], headers, deadline)
        location = response.getheader("Location")
        if response.status not in REDIRECTS or not location:
            break
        _close(connection, response)
        target = _redirect_target(chain[-1], location)
        if target in chain:
            loop = " -> ".join(chain[chain.index(target):] + [target])
            raise FetchError(url, f"redirect loop ({loop})")
        if len(chain) > max_redirects:
            raise FetchError(url, f"too many redirects (more than {max_redirects}, last to {target})")
        chain.append(target)
    try:
        yield response
    finally:
        _close(connection, response)


def _close(connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
    response.close()  # the response may own the socket (Connection: close), else the connection does
    connection.close()


def _get(url: str, headers: Mapping[str, str], deadline: Deadline):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.netloc.rpartition("@")[2], timeout=deadline.remaining())
    try:
        try:
            connection.connect()
        except (TimeoutError, ConnectionError):  # worth another try
            raise
        except OSError as e:  # unknown host, no route, TLS refused: not worth one
            raise FetchError(url, f"cannot connect ({e})") from None
        deadline.watch(connection.sock)
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                           headers=dict(headers))
        return connection, connection.getresponse()
    except BaseException:
        connection.close()
        raise


def _redirect_target(url: str, location: str) -> str:
    # http.client reads header bytes as Latin-1: get the bytes back, read them as UTF-8 where they are
    location = location.encode("latin-1").decode("utf-8", errors="surrogateescape")
    try:
        target = iri_to_uri(urljoin(url, location))
    except ValueError as e:
        raise FetchError(url, f"bad redirect ({e})") from None
    if urlsplit(target).scheme not in ("http", "https"):
        raise FetchError(url, f"redirect to a non-http(s) URL ({target})")
    return target


def content_coding(response: http.client.HTTPResponse) -> str:
    """The body's Content-Encoding, lower-case; "identity" when none."""
    return (response.getheader("Content-Encoding") or "identity").strip().lower() or "identity"


def body_chunks(response: http.client.HTTPResponse, url: str) -> Iterator[bytes]:
    """The decoded body in pieces; raises ConnectionError if the connection ends before the body does."""
    decoder = _Decoder(content_coding(response), url)
    while raw := response.read(CHUNK_BYTES):
        yield from decoder.feed(raw)
    if response.length:  # http.client counts Content-Length down in `length`
        raise ConnectionError(f"body cut short ({response.length} bytes missing)")
    if not decoder.finished():
        raise ConnectionError(f"{decoder.coding} body cut short")


class _Decoder:
    """Undoes one Content-Encoding piece by piece: gzip (also several members), deflate (zlib or raw), identity.

    Output comes in pieces of at most CHUNK_BYTES, so a small body that inflates enormously is refused by the
    caller's size cap before it fills the memory.
    """

    def __init__(self, coding: str, url: str):
        if coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(url, f"unsupported Content-Encoding {coding!r}")
        self.coding, self.url = coding, url
        self._zlib = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.coding == "identity":
            yield data
            return
        try:
            while True:
                if self._zlib is None or (self._zlib.eof and data):
                    self._zlib = zlib.decompressobj(self._wbits(data))  # the first or the next gzip member
                out = self._zlib.decompress(data, CHUNK_BYTES)
                if out:
                    yield out
                data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
                if not data and (self._zlib.eof or len(out) < CHUNK_BYTES):  # else more output may be pending
                    return
        except zlib.error as e:
            raise FetchError(self.url, f"corrupt {self.coding} body ({e})") from None

    def finished(self) -> bool:
        """Whether the compressed stream ended (a body without a byte counts as ended)."""
        return self._zlib is None or self._zlib.eof

    def _wbits(self, head: bytes) -> int:
        if self.coding != "deflate":
            return 16 + zlib.MAX_WBITS
        # HTTP's "deflate" is zlib-wrapped, but some servers send raw deflate: a zlib header is 2 bytes,
        # compression method 8, their big-endian value a multiple of 31
        zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
