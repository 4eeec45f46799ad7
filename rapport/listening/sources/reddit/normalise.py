"""Reddit `/search.json` Listing children (kind t3 links, t1 comments) → mention dicts."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from rapport.listening.sources.base import BadItem, as_int, obj, parse_datetime, sane_time


def normalise(child: Any, now: dt.datetime) -> dict[str, Any]:
    if not isinstance(child, dict) or child.get("kind") not in ("t3", "t1"):
        raise BadItem("not a post or comment")
    data = obj(child.get("data"))
    name = str(data.get("name") or "")
    if not name:
        raise BadItem("a post without a fullname")
    title = html.unescape(str(data.get("title") or ""))[:300]
    body = html.unescape(str(data.get("selftext") or data.get("body") or ""))
    text = f"{title}\n{body}".strip() if title else body.strip()
    if not text:
        raise BadItem(f"{name} has no text")
    author = str(data.get("author") or "")
    permalink = str(data.get("permalink") or "")
    outbound = str(data.get("url") or "")
    links = [outbound[:1000]] if outbound.startswith("http") and "reddit.com" not in outbound else []
    return {
        "source_kind": "reddit",
        "external_id": name,
        "url": f"https://www.reddit.com{permalink}" if permalink.startswith("/") else "",
        "author_kind": "",
        "author_handle": f"u/{author}" if author and author != "[deleted]" else "",
        "author_name": author if author != "[deleted]" else "",
        "author_followers": 0,
        "title": title,
        "text": text.replace("\x00", ""),
        "language": "",
        "published_at": sane_time(parse_datetime(data.get("created_utc")), now),
        "reach": as_int(data.get("subreddit_subscribers")),
        "likes": as_int(data.get("score") if data.get("score") is not None else data.get("ups")),
        "shares": as_int(data.get("num_crossposts")),
        "replies": as_int(data.get("num_comments")),
        "links": links,
    }
