"""Bluesky search (`GET /xrpc/app.bsky.feed.searchPosts?sort=latest&since=…`). The API has no
since-id; the cursor keeps the newest `createdAt` seen and asks from there (inclusive, so the
boundary post comes back once more and is dropped by dedup)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from rapport.listening.http import Response
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.bluesky import normalise as bn

API = "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts"


class Poller(base.Poller):
    kind = "bluesky"

    def keys(self) -> list[str]:
        return [f"search:{t}" for t in self.terms()][:20]

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        params = {"q": key.partition(":")[2], "sort": "latest", "limit": "100"}
        if cursor.since_id:
            params["since"] = cursor.since_id
        headers = {"Accept": "application/json"}
        token = self.source.credentials.get("access_jwt") if self.source.credentials_encrypted else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return f"{self.config.get('api') or API}?{urlencode(params)}", headers

    def read(self, key: str, cursor: SourceCursor, response: Response) -> base.Page:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise base.BadDocument(f"not JSON ({exc})") from None
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, list):
            raise base.BadDocument("no posts list in the answer")
        newest = base.parse_datetime(cursor.since_id) if cursor.since_id else None
        for p in posts:
            record = base.obj(base.obj(p).get("record"))
            when = base.parse_datetime(record.get("createdAt"))
            if when is not None and when <= dt.datetime.now(dt.UTC) and (newest is None or when > newest):
                newest = when
        return base.Page(posts, {"since_id": newest.isoformat().replace("+00:00", "Z") if newest else ""})

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return bn.normalise(item, now)
