"""Bluesky `app.bsky.feed.searchPosts` PostViews → mention dicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rapport.listening.sources.base import BadItem, arr, as_int, obj, parse_datetime, sane_time


def post_url(uri: str, handle: str) -> str:
    # at://did:plc:xyz/app.bsky.feed.post/3k… → https://bsky.app/profile/<handle>/post/3k…
    parts = uri.removeprefix("at://").split("/")
    if len(parts) == 3 and parts[1] == "app.bsky.feed.post":
        return f"https://bsky.app/profile/{handle or parts[0]}/post/{parts[2]}"
    return ""


def normalise(post: Any, now: dt.datetime) -> dict[str, Any]:
    if not isinstance(post, dict) or not str(post.get("uri", "")).startswith("at://"):
        raise BadItem("a post without an at:// uri")
    record = obj(post.get("record"))
    text = str(record.get("text") or "").replace("\x00", "")
    if not text.strip():
        raise BadItem(f"post {post['uri']} has no text")
    author = obj(post.get("author"))
    handle = str(author.get("handle") or "").lower()
    links: list[str] = []
    tags: list[str] = []
    for facet in arr(record.get("facets")):
        for feature in map(obj, arr(obj(facet).get("features"))):
            kind = str(feature.get("$type", ""))
            if kind.endswith("#link") and str(feature.get("uri", "")).startswith("http"):
                links.append(str(feature["uri"])[:1000])
            elif kind.endswith("#tag") and feature.get("tag"):
                tags.append(str(feature["tag"]).lower())
    langs = record.get("langs") or []
    return {
        "source_kind": "bluesky",
        "external_id": str(post["uri"])[:300],
        "url": post_url(str(post["uri"]), handle),
        "author_kind": "bluesky" if handle and handle != "handle.invalid" else "",
        "author_handle": handle,
        "author_name": str(author.get("displayName") or "")[:200],
        "author_followers": as_int(author.get("followersCount")),
        "text": text,
        "language": str(langs[0])[:10] if isinstance(langs, list) and langs else "",
        "published_at": sane_time(parse_datetime(record.get("createdAt") or post.get("indexedAt")), now),
        "reach": as_int(author.get("followersCount")),
        "likes": as_int(post.get("likeCount")),
        "shares": as_int(post.get("repostCount")) + as_int(post.get("quoteCount")),
        "replies": as_int(post.get("replyCount")),
        "links": links[:20],
        "hashtags": tags,
    }
