"""IRI -> URI (RFC 3987 section 3.1): the ASCII form of a link as found in a page, which HTTP can send."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SUB_DELIMS = "!$&'()*+,;="
_UNRESERVED = "A-Za-z0-9\\-._~"
# Characters each component keeps as they are; "%" is kept only where it starts a %XX escape.
_KEEP = {
    "userinfo": _UNRESERVED + re.escape(_SUB_DELIMS) + ":",
    "path": _UNRESERVED + re.escape(_SUB_DELIMS) + ":@/",
    "query": _UNRESERVED + re.escape(_SUB_DELIMS) + ":@/?",
}
_NEEDS_ESCAPE = {part: re.compile(f"%(?![0-9A-Fa-f]{{2}})|[^{keep}%]+") for part, keep in _KEEP.items()}
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
# host[:port]; an IPv6 "[::1]" keeps its colons inside the brackets
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:]*)(?P<colon>:(?P<port>[0-9]*))?")
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")


def iri_to_uri(iri: str) -> str:
    """`iri` with a punycode (IDNA) host and every other character that a URI cannot hold percent-encoded as
    UTF-8; existing %XX escapes are kept (upper-cased), never encoded twice. Raises ValueError if malformed.

    Like browsers, surrounding spaces and any tab or newline are dropped first.
    """
    parts = urlsplit(_TAB_OR_NEWLINE.sub("", iri.strip()))
    netloc = parts.netloc
    if netloc:
        userinfo, at, hostport = netloc.rpartition("@")
        match = _HOST_PORT.fullmatch(hostport)
        if not match or int(match["port"] or 0) > 65535:
            raise ValueError(f"bad host or port {hostport!r} in {iri!r}")
        netloc = _escape(userinfo, "userinfo") + at + _idna(match["host"]) + (match["colon"] or "")
    return urlunsplit((parts.scheme, netloc, _escape(parts.path, "path"), _escape(parts.query, "query"),
                       _escape(parts.fragment, "query")))


def _escape(text: str, part: str) -> str:
    """Percent-encode what `part` cannot hold; lone surrogates (undecodable bytes of a header) go back to bytes."""
    text = _NEEDS_ESCAPE[part].sub(lambda m: _percent(m.group().encode("utf-8", "surrogateescape")), text)
    return _ESCAPE.sub(lambda m: m.group().upper(), text)


def _percent(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise ValueError(f"host {host!r} is not a valid international domain name ({e})") from None
