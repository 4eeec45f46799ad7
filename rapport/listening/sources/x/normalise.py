"""X API v2 tweets (recent search pages and filtered stream lines, both requested with
`expansions=author_id`) → mention dicts. Authors come from `includes.users` with their
`public_metrics`. Also what both X sources send: the fields asked for and the auth header."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rapport.listening.models import ListeningSource
from rapport.listening.sources.base import BadItem, arr, as_int, obj, parse_datetime, sane_time

# The same fields for recent search and the filtered stream, so a tweet normalises alike
# whichever way it came.
FIELDS = {
    "tweet.fields": "created_at,lang,public_metrics,author_id,entities,note_tweet",
    "expansions": "author_id",
    "user.fields": "username,name,public_metrics,verified",
}


def without_retweets(term: str) -> str:
    return term if "is:retweet" in term else f"{term} -is:retweet"


def auth_headers(source: ListeningSource) -> dict[str, str]:
    """App-only bearer token (OAuth 2.0), kept encrypted in the source's credentials."""
    token = source.credentials.get("bearer_token", "") if source.credentials_encrypted else ""
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def users_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(u.get("id")): u for u in arr(obj(document.get("includes")).get("users")) if isinstance(u, dict)
    }


def normalise(
    tweet: Any, now: dt.datetime, *, users: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    if not isinstance(tweet, dict) or not str(tweet.get("id", "")).isdigit():
        raise BadItem("a tweet without a numeric id")
    text = str(obj(tweet.get("note_tweet")).get("text") or tweet.get("text") or "").replace("\x00", "")
    if not text.strip():
        raise BadItem(f"tweet {tweet['id']} has no text")
    user = obj((users or {}).get(str(tweet.get("author_id", ""))))
    username = str(user.get("username") or "")
    metrics = obj(tweet.get("public_metrics"))
    user_metrics = obj(user.get("public_metrics"))
    entities = obj(tweet.get("entities"))
    links = [
        str(u.get("expanded_url") or u.get("url") or "")[:1000]
        for u in arr(entities.get("urls"))
        if isinstance(u, dict) and str(u.get("expanded_url") or u.get("url") or "").startswith("http")
    ]
    tags = [str(h.get("tag", "")).lower() for h in arr(entities.get("hashtags")) if isinstance(h, dict)]
    followers = as_int(user_metrics.get("followers_count"))
    return {
        "source_kind": "x",
        "external_id": str(tweet["id"]),
        "url": f"https://x.com/{username or 'i'}/status/{tweet['id']}",
        "author_kind": "x" if username else "",
        "author_handle": username.lower(),
        "author_name": str(user.get("name") or "")[:200],
        "author_followers": followers,
        "text": text,
        "language": ""
        if tweet.get("lang") in (None, "und", "zxx", "qme", "qht")
        else str(tweet["lang"])[:10],
        "published_at": sane_time(parse_datetime(tweet.get("created_at")), now),
        "reach": as_int(metrics.get("impression_count")) or followers,
        "likes": as_int(metrics.get("like_count")),
        "shares": as_int(metrics.get("retweet_count")) + as_int(metrics.get("quote_count")),
        "replies": as_int(metrics.get("reply_count")),
        "links": links[:20],
        "hashtags": [t for t in tags if t],
    }
