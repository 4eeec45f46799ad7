"""RSS 2.0 / Atom 1.0 (and RDF) → mention dicts.

The bytes are checked with defusedxml before feedparser sees them: a document with a DTD
(billion laughs, external entities) is rejected whole. A document that is not well formed in
its declared encoding (a Latin-1 feed that says UTF-8) is decoded as Windows-1252 and checked
again, rather than dropped."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
import feedparser

from rapport.listening.sources.base import BadDocument, BadItem, hash_id, html_to_text, sane_time

_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")


def _check(body: bytes) -> None:
    SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def safe_bytes(body: bytes) -> bytes:
    """The document as bytes feedparser may read; BadDocument when hostile or unreadable."""
    if not body or not body.strip():
        raise BadDocument("the feed is empty")
    try:
        _check(body)
        return body
    except defusedxml.DefusedXmlException as exc:
        raise BadDocument(f"unsafe XML ({type(exc).__name__}: DTDs and entities are not accepted)") from None
    except ParseError as first:
        # Wrong declared encoding is common in hand-made feeds; try once as Windows-1252.
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("cp1252", errors="replace")
        repaired = _DECL.sub(b"", text.encode("utf-8"))
        try:
            _check(repaired)
        except defusedxml.DefusedXmlException as exc:
            raise BadDocument(f"unsafe XML ({type(exc).__name__})") from None
        except ParseError:
            raise BadDocument(f"not well-formed XML ({first})") from None
        return b'<?xml version="1.0" encoding="utf-8"?>' + repaired


def parse_feed(body: bytes) -> list[Any]:
    parsed = feedparser.parse(safe_bytes(body))
    if not parsed.entries and parsed.get("bozo") and not parsed.get("feed"):
        raise BadDocument(f"not a feed ({parsed.get('bozo_exception')})")
    return list(parsed.entries)


def _when(entry: Any) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # plain dict access: no deprecated key aliasing
        if value:
            try:
                return dt.datetime.fromtimestamp(calendar.timegm(value), tz=dt.UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def normalise(entry: Any, now: dt.datetime, *, feed_url: str = "") -> dict[str, Any]:
    if not hasattr(entry, "get"):
        raise BadItem("an entry that is not a mapping")
    title = html_to_text(str(entry.get("title") or ""))[:300]
    html = ""
    contents = entry.get("content") or []
    if contents and isinstance(contents, list):
        html = str(contents[0].get("value") or "")
    html = html or str(entry.get("summary") or entry.get("description") or "")
    text = html_to_text(html)
    if not (title or text):
        raise BadItem("an entry without title or text")
    link = str(entry.get("link") or "")
    if not link.startswith(("http://", "https://")):
        link = ""
    external_id = str(entry.get("id") or "").strip() or link or hash_id(feed_url, title, text)
    author = str(entry.get("author") or "")[:200]
    links = [link] if link else []
    for extra in entry.get("links") or []:
        href = str(extra.get("href") or "")
        if href.startswith(("http://", "https://")) and href not in links:
            links.append(href[:1000])
    return {
        "source_kind": "rss",
        "external_id": external_id[:300] if len(external_id) <= 300 else hash_id(external_id),
        "url": link[:1000],
        "author_kind": "",
        "author_handle": author[:320],
        "author_name": author,
        "author_followers": 0,
        "title": title,
        "text": (f"{title}\n{text}" if title and text and not text.startswith(title) else text or title),
        "language": str(entry.get("language") or "")[:10],
        "published_at": sane_time(_when(entry), now),
        "links": links[:20],
    }
