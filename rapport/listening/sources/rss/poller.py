"""Polls RSS/Atom feeds with conditional GET (ETag, Last-Modified): an unchanged feed costs
one 304 and nothing is read twice; entries already stored are dropped by ingest's dedup."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rapport.listening.http import Response
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.rss import normalise as rss


class Poller(base.Poller):
    kind = "rss"

    def keys(self) -> list[str]:
        urls = self.config.get("urls") or ([self.config["url"]] if self.config.get("url") else [])
        return [str(u).strip() for u in urls if str(u).strip()][:50]

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.1"}
        if cursor.etag:
            headers["If-None-Match"] = cursor.etag
        if cursor.last_modified:
            headers["If-Modified-Since"] = cursor.last_modified
        return key, headers

    def read(self, key: str, cursor: SourceCursor, response: Response) -> base.Page:
        self._feed_url = key
        entries = rss.parse_feed(response.body)
        return base.Page(
            entries,
            {"etag": response.header("etag"), "last_modified": response.header("last-modified")},
        )

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return rss.normalise(item, now, feed_url=getattr(self, "_feed_url", ""))
