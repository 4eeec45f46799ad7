"""Mastodon Status entities (REST API v1/v2 JSON) → mention dicts.

Content is HTML from any server in the fediverse: it is reduced to text with nh3, links are
taken from anchors that are not mentions or hashtags."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from rapport.listening.sources.base import (
    BadItem,
    as_int,
    html_to_text,
    links_in_html,
    parse_datetime,
    sane_time,
)


def handle(account: dict[str, Any], instance: str) -> str:
    acct = str(account.get("acct") or account.get("username") or "").lstrip("@")
    if not acct:
        return ""
    if "@" not in acct:
        host = urlsplit(str(account.get("url") or "")).hostname or urlsplit(instance).hostname or ""
        acct = f"{acct}@{host}" if host else acct
    return "@" + acct.lower()


def normalise(status: Any, now: dt.datetime, *, instance: str = "") -> dict[str, Any]:
    if not isinstance(status, dict) or not status.get("id"):
        raise BadItem("a status without an id")
    if isinstance(status.get("reblog"), dict):
        status = status["reblog"]  # a boost: the original post is the mention
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    content = str(status.get("content") or "")
    spoiler = str(status.get("spoiler_text") or "")
    text = html_to_text(content)
    if spoiler:
        text = f"{spoiler}\n{text}".strip()
    if not text and not status.get("media_attachments"):
        raise BadItem(f"status {status.get('id')} has no text")
    uri = str(status.get("uri") or "")
    url = str(status.get("url") or uri)
    likes, shares, replies = (
        as_int(status.get("favourites_count")),
        as_int(status.get("reblogs_count")),
        as_int(status.get("replies_count")),
    )
    followers = as_int(account.get("followers_count"))
    tags = [str(t.get("name", "")).lower() for t in status.get("tags") or [] if isinstance(t, dict)]
    return {
        "source_kind": "mastodon",
        # The URI is the same on every server; the id differs per server.
        "external_id": (uri or f"{instance}#{status['id']}")[:300],
        "url": url[:1000] if url.startswith(("http://", "https://")) else "",
        "author_kind": "mastodon",
        "author_handle": handle(account, instance),
        "author_name": html_to_text(str(account.get("display_name") or ""))[:200],
        "author_followers": followers,
        "text": text,
        "language": str(status.get("language") or "")[:10],
        "published_at": sane_time(parse_datetime(status.get("created_at")), now),
        "reach": followers,
        "likes": likes,
        "shares": shares,
        "replies": replies,
        "links": links_in_html(content, skip_classes=("mention", "hashtag")),
        "hashtags": [t for t in tags if t],
        "platform_id": str(status.get("id")),
    }
