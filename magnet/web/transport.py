"""One HTTP GET on the wire: keep-alive connections from a pool shared by threads, redirects followed, a
whole-request deadline, and the body's Content-Encoding (gzip, deflate) undone. Policy (rate, retries, what
counts as failure) is the client's.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from magnet.web.urls import iri_to_uri

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 1 << 16


class FetchError(Exception):
    """A URL that could not be fetched; `reason` says why in a few words, `status` is the HTTP status if any."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class Deadline:
    """A time limit for a whole request: connect, headers and body together, however slowly bytes trickle.

    Each connect step waits at most the time left; once connected, a timer shuts the socket down when the time
    is up, which ends any read blocked on it. `expired` then tells that short or failed read from a real one.
    A socket `release`d in time (its connection goes back to a pool) is no longer watched.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._timers: dict[socket.socket, threading.Timer] = {}
        self._lock = threading.Lock()
        self._shut = False  # the timer shut a socket down

    @property
    def expired(self) -> bool:
        """The time is up (also when a socket's own timeout, set to the time left, fired just before the timer)."""
        return self._shut or time.monotonic() >= self._end

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds:g}s passed")
        return left

    def watch(self, sock: socket.socket) -> None:
        timer = threading.Timer(self.remaining(), self._expire, (sock,))
        timer.daemon = True
        with self._lock:
            self._timers[sock] = timer
        timer.start()

    def release(self, sock: socket.socket) -> bool:
        """Stop watching `sock`; False if the deadline has already shut it down."""
        with self._lock:
            timer = self._timers.pop(sock, None)
        if timer is not None:
            timer.cancel()
        return timer is not None

    def _expire(self, sock: socket.socket) -> None:
        with self._lock:
            if self._timers.pop(sock, None) is None:  # released meanwhile: back in a pool, not ours to shut
                return
            self._shut = True
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
            except OSError:  # already closed
                pass

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()


class ConnectionPool:
    """Idle keep-alive connections per origin (scheme, host:port), shared by threads.

    A request takes an idle connection (or opens one) for itself alone and gives it back once its reply has
    been read to the end; a pool of size 0 keeps nothing, so every request opens its own connection.
    """

    def __init__(self, max_idle_per_origin: int = 16):
        self.max_idle = max_idle_per_origin
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def take(self, origin: tuple[str, str], deadline: Deadline,
             fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A connected connection to `origin` and whether it was used before (`fresh`: never an idle one)."""
        timeout = deadline.remaining()
        while not fresh:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            if _dropped(connection):  # the server closed it while it sat idle
                connection.close()
                continue
            connection.sock.settimeout(timeout)
            return connection, True
        scheme, netloc = origin
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = kind(netloc, timeout=timeout)
        try:
            connection.connect()
        except BaseException:
            connection.close()
            raise
        return connection, False

    def give_back(self, origin: tuple[str, str], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = [c for cs in self._idle.values() for c in cs], {}
        for connection in idle:
            connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is gone: readable while no request is out means closed (or garbage)."""
    if connection.sock is None:
        return True
    with selectors.DefaultSelector() as selector:
        selector.register(connection.sock, selectors.EVENT_READ)
        return bool(selector.select(0))


@contextmanager
def open_url(url: str, headers: Mapping[str, str], deadline: Deadline, max_redirects: int,
             pool: ConnectionPool | None = None) -> Iterator[http.client.HTTPResponse]:
    """GET `url` (already a URI), following up to `max_redirects` redirects; yields the final response.

    Connections come from `pool` and go back to it when their reply was read to the end (None: a connection
    of its own for each request).
    """
    pool = pool or ConnectionPool(max_idle_per_origin=0)
    chain = [url]
    while True:
        origin, connection, response = _get(chain[-1], headers, deadline, pool)
        location = response.getheader("Location")
        if response.status not in REDIRECTS or not location:
            break
        _finish(pool, origin, connection, response, deadline)
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
        _finish(pool, origin, connection, response, deadline)


def _finish(pool: ConnectionPool, origin: tuple[str, str], connection: http.client.HTTPConnection,
            response: http.client.HTTPResponse, deadline: Deadline) -> None:
    """Give the connection back to the pool if its reply is over and it may carry another, else close it."""
    sock = connection.sock
    if sock is not None and not response.will_close and _drain(response) and deadline.release(sock):
        pool.give_back(origin, connection)
        return
    response.close()  # the response may own the socket (Connection: close), else the connection does
    connection.close()


def _drain(response: http.client.HTTPResponse) -> bool:
    """Whether the body was read to its end, after reading what is left of a small one (an error page's)."""
    if response.isclosed():
        return True
    if response.length is not None and response.length > CHUNK_BYTES:
        return False
    try:
        response.read(CHUNK_BYTES)
    except (OSError, http.client.HTTPException):
        return False
    return response.isclosed()


def _get(url: str, headers: Mapping[str, str], deadline: Deadline, pool: ConnectionPool):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an http(s) URL")
    origin = (parts.scheme, parts.netloc.rpartition("@")[2])
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fresh = False
    while True:
        try:
            connection, reused = pool.take(origin, deadline, fresh)
        except (TimeoutError, ConnectionError):  # worth another try
            raise
        except OSError as e:  # unknown host, no route, TLS refused: not worth one
            raise FetchError(url, f"cannot connect ({e})") from None
        sock = connection.sock  # http.client drops it on a ConnectionError
        try:
            deadline.watch(sock)
            connection.request("GET", target, headers=dict(headers))
            return origin, connection, connection.getresponse()
        except ConnectionError:
            if not reused or not deadline.release(sock):
                connection.close()
                raise
            connection.close()
            fresh = True  # a kept connection the server had just closed: once more on a new one
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
