"""robots.txt, read once per site (scheme, host, port) and asked before every request (RFC 9309).

A robots.txt that is missing (404, any 4xx) allows everything; 401/403 forbid everything, as
`urllib.robotparser` reads them; a Crawl-delay or Request-rate for us is handed to `on_pace` (seconds between
requests). One that cannot be read at all (no connection, 5xx after the retries) is
an error for every URL of that site, remembered so the site is not asked again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from magnet.web.transport import FetchError


class Disallowed(FetchError):
    """A URL the site's robots.txt forbids to our User-Agent: never requested."""


class Robots:
    """The robots.txt rules of every site asked about, fetched with `fetch(url) -> text` on first use."""

    def __init__(self, user_agent: str, fetch: Callable[[str], str], on_pace: Callable[[str, float], None]):
        self.user_agent = user_agent
        self._fetch = fetch
        self._on_pace = on_pace
        self._rules: dict[str, RobotFileParser | FetchError] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, url: str) -> None:
        """Raise Disallowed if robots.txt forbids `url`, FetchError if its robots.txt cannot be read."""
        if not self.rules(url).can_fetch(self.user_agent, url):
            raise Disallowed(url, f"disallowed by {robots_url(url)} for {self.user_agent}")

    def rules(self, url: str) -> RobotFileParser:
        """The parsed robots.txt of `url`'s site; FetchError if it cannot be read."""
        site = robots_url(url)
        with self._lock:
            lock = self._locks.setdefault(site, threading.Lock())
        with lock:  # one thread reads it; the others of the same site wait for its answer
            if site not in self._rules:
                self._rules[site] = self._read(site)
        rules = self._rules[site]
        if isinstance(rules, FetchError):
            raise FetchError(url, f"{site} cannot be read ({rules.reason})")
        return rules

    def _read(self, site: str) -> RobotFileParser | FetchError:
        rules = RobotFileParser(site)
        try:
            rules.parse(self._fetch(site).splitlines())
        except FetchError as e:
            if e.status in (401, 403):
                rules.disallow_all = True
            elif e.status is not None and 400 <= e.status < 500:
                rules.allow_all = True
            else:
                return e
        rate = rules.request_rate(self.user_agent)
        pace = max(rules.crawl_delay(self.user_agent) or 0, rate.seconds / rate.requests if rate else 0)
        if pace:
            self._on_pace(site, pace)
        return rules


def robots_url(url: str) -> str:
    """Where the robots.txt that governs `url` lives."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/robots.txt"
