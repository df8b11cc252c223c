"""Decode an HTML page as a browser would: BOM, then the HTTP charset, then `<meta>`, then UTF-8."""

from __future__ import annotations

import codecs
import re

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# <meta charset="x"> and <meta http-equiv="Content-Type" content="text/html; charset=x">
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_PRESCAN_BYTES = 8192  # where a page's <meta> charset must appear (browsers look at the first 1024)


def decode_html(body: bytes, header_charset: str | None) -> str:
    """`body` as text in its declared encoding; undeclared, UTF-8 if it is valid UTF-8, else windows-1252."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace")
    meta = _META_CHARSET.search(body[:_PRESCAN_BYTES])
    for label, in_page in ((header_charset, False), (meta and meta.group(1).decode("ascii"), True)):
        codec = _codec(label, in_page)
        if codec:
            return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def _codec(label: str | None, in_page: bool) -> str | None:
    """Python's codec for a charset label; None when unknown. Latin-1 and ASCII labels mean windows-1252 on
    the web (WHATWG Encoding), and a UTF-16 label in an ASCII-readable <meta> can only mean UTF-8."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("'\"")).name
    except LookupError:
        return None
    if name in ("iso8859-1", "ascii"):
        return "cp1252"
    if in_page and name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return name
