"""Download one file: a progress bar, resumed after a cut, checked, then renamed into place.

Bytes go to `<file>.part` beside the file. An attempt cut short (dropped connection, deadline, server error)
is resumed with an HTTP Range request; the download gives up after ATTEMPTS attempts in a row that add no
byte. Only a complete file whose size and SHA-256 match what is published (where known) gets its final name,
so a file in the cache is always whole. A lock file keeps concurrent processes (DDP ranks) from fetching it
twice. Google Drive's virus-scan warning page is passed through (see `drive`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import ssl
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from magnet.errors import UserError
from magnet.models.drive import past_warning
from magnet.web.transport import Deadline, FetchError, body_chunks, open_url
from magnet.web.urls import iri_to_uri

TIMEOUT = 120.0  # seconds for one attempt (connect, headers, body); a longer download goes on in the next one
ATTEMPTS = 5  # attempts in a row that add no byte before giving up
RETRY_WAIT = 1.0  # seconds between attempts
MAX_REDIRECTS = 10
MAX_PAGE_BYTES = 1 << 20  # a web page sent instead of the file is read up to this size, to find a way on
HEADERS = {"User-Agent": "magnet (model download)"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class _Retry(Exception):
    """A failed attempt worth another, resumed one."""


class _Part:
    """The bytes downloaded so far (`<file>.part`) and their running SHA-256."""

    def __init__(self, path: Path):
        self.path = path
        self.sha256 = hashlib.sha256()
        if path.is_file():  # left by an interrupted run: its bytes start the digest
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.sha256.update(chunk)

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0

    def restart(self) -> None:
        self.path.unlink(missing_ok=True)
        self.sha256 = hashlib.sha256()


def download(url: str, dest: str | os.PathLike, label: str, size: int | None = None,
             sha256: str | None = None) -> Path:
    """`dest`, downloaded from `url` unless it is there; `label` names it in the progress bar and in errors.

    Any failure is a UserError of one line naming the URL, the reason and where to put the file by hand.
    """
    dest = Path(dest)
    try:
        uri = iri_to_uri(url)
    except ValueError as err:
        raise UserError(f"cannot download {label}: {url!r} is not a valid URL ({err})") from None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the model cache {dest.parent} ({err.strerror}); set MAGNET_CACHE to a "
                        "folder you can write to") from None
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if dest.is_file():  # another process fetched it while this one waited
            return dest
        part = _Part(dest.with_name(dest.name + ".part"))
        with _progress() as progress:
            task = progress.add_task(label, total=size, completed=part.size)
            failures = 0
            while True:
                before = part.size
                try:
                    _attempt(uri, part, progress, task)
                    break
                except _Retry as err:
                    reason = str(err)
                except FetchError as err:
                    raise UserError(_cannot(label, url, err.reason, dest)) from None
                failures = 0 if part.size > before else failures + 1
                if failures >= ATTEMPTS:
                    raise UserError(_cannot(label, url, f"{reason} ({ATTEMPTS} attempts without progress)", dest))
                time.sleep(RETRY_WAIT)
        _check(part, size, sha256, label, url, dest)
        os.replace(part.path, dest)
    Console(stderr=True).print(f"downloaded {label} to {dest} ({dest.stat().st_size:,} bytes, sha256 "
                               f"{part.sha256.hexdigest()})", markup=False, highlight=False, soft_wrap=True)
    return dest


def _cannot(label: str, url: str, reason: str, dest: Path) -> str:
    return (f"could not download {label} from {url}: {reason}; download it yourself and save it as {dest}, "
            "or give the path of your copy instead")


def _attempt(uri: str, part: _Part, progress: Progress, task) -> None:
    """One GET from where the part ends; raises _Retry for what another attempt may get past."""
    with Deadline(TIMEOUT) as deadline:
        try:
            offset = part.size
            headers = HEADERS | ({"Range": f"bytes={offset}-"} if offset else {})
            with _open_file(uri, headers, deadline) as response:
                total = _start(response, part, offset, uri)
                progress.update(task, total=total, completed=part.size)
                with open(part.path, "ab") as f:
                    for chunk in body_chunks(response, uri):
                        f.write(chunk)
                        part.sha256.update(chunk)
                        progress.advance(task, len(chunk))
        except Exception as err:
            if deadline.expired:  # whatever the cut-off read looked like
                raise _Retry(f"no whole reply within {TIMEOUT:g} s") from None
            if isinstance(err, ConnectionRefusedError):  # nobody listens there: another try will not help
                raise FetchError(uri, "connection refused") from None
            if isinstance(err, (TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError)):
                raise _Retry(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
            raise
        if deadline.expired:  # a body without Content-Length ends where the deadline cut it
            raise _Retry(f"no whole reply within {TIMEOUT:g} s")


def _start(response: http.client.HTTPResponse, part: _Part, offset: int, uri: str) -> int | None:
    """Check the status; on a full reply drop the part. Returns the file's size when the reply says it."""
    status = response.status
    if status == 416:  # the part is not a prefix of what the server has now
        part.restart()
        raise _Retry("the server refused the resume range; starting again")
    if status == 429 or status >= 500:
        raise _Retry(f"HTTP {status}")
    if status not in (200, 206):
        raise FetchError(uri, f"HTTP {status}")
    if status == 200:  # the whole file: a server without Range support starts from byte 0
        part.restart()
        return response.length
    found = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range") or "")
    if not found or int(found.group(1)) != offset:
        part.restart()
        raise _Retry(f"the server resumed at another byte (Content-Range {response.getheader('Content-Range')})")
    return int(found.group(2)) if found.group(2) != "*" else None


@contextmanager
def _open_file(uri: str, headers: dict[str, str], deadline: Deadline):
    """GET `uri`; a web page in its place is passed when it is Google Drive's virus-scan warning."""
    with open_url(uri, headers, deadline, MAX_REDIRECTS) as response:
        if not _is_page(response):
            yield response
            return
        way_on = past_warning(uri, _read_page(response, uri), response.headers.get_all("Set-Cookie") or [])
    if way_on is None:
        raise FetchError(uri, "the server sent a web page, not the file (on Google Drive: over its download "
                              "quota, or not shared publicly)")
    next_url, extra = way_on
    try:
        next_url = iri_to_uri(next_url)
    except ValueError as err:
        raise FetchError(uri, f"its download warning leads to a bad URL ({err})") from None
    with open_url(next_url, headers | extra, deadline, MAX_REDIRECTS) as response:
        if _is_page(response):
            raise FetchError(uri, "the server sent a web page again after its download warning, not the file")
        yield response


def _is_page(response: http.client.HTTPResponse) -> bool:
    return response.status == 200 and response.headers.get_content_type() == "text/html"


def _read_page(response: http.client.HTTPResponse, uri: str) -> str:
    body = bytearray()
    for chunk in body_chunks(response, uri):
        body += chunk
        if len(body) > MAX_PAGE_BYTES:
            break
    return body.decode(response.headers.get_content_charset() or "utf-8", errors="replace")


def _check(part: _Part, size: int | None, sha256: str | None, label: str, url: str, dest: Path) -> None:
    """Refuse (and delete) a download that is not the published file."""
    digest = part.sha256.hexdigest()
    wrong = []
    if size is not None and part.size != size:
        wrong.append(f"{part.size:,} bytes, expected {size:,}")
    if sha256 is not None and digest != sha256.lower():
        wrong.append(f"sha256 {digest}, expected {sha256}")
    if wrong:
        part.restart()
        raise UserError(f"downloaded {label} from {url}, but it is not the published file ({'; '.join(wrong)}); "
                        f"removed it. Run again, or download it yourself and save it as {dest}")


@contextmanager
def _exclusive(lock_path: Path):
    """An exclusive lock on `lock_path` for as long as the block runs (POSIX; no lock without fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))
