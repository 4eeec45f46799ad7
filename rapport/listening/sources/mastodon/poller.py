"""Mastodon: hashtag timelines (`GET /api/v1/timelines/tag/:hashtag`) and status search
(`GET /api/v2/search?type=statuses`), each with its own cursor. `since_id` asks only for
statuses newer than the newest one already read."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlencode

from rapport.listening.http import Response
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.mastodon import normalise as masto


class Poller(base.Poller):
    kind = "mastodon"

    @property
    def instance(self) -> str:
        return str(self.config.get("instance") or "https://mastodon.social").rstrip("/")

    def keys(self) -> list[str]:
        tags = [str(t).lstrip("#").strip() for t in self.config.get("hashtags", []) if str(t).strip("# ")]
        keys = [f"tag:{t}" for t in tags]
        if self.config.get("search", True) or not keys:
            keys += [f"search:{t}" for t in self.terms()]
        return keys[:30]

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        kind, _, term = key.partition(":")
        params: dict[str, str] = {"limit": "40"}
        if cursor.since_id:
            params["since_id" if kind == "tag" else "min_id"] = cursor.since_id
        if kind == "tag":
            url = f"{self.instance}/api/v1/timelines/tag/{quote(term, safe='')}?{urlencode(params)}"
        else:
            params.update({"q": term, "type": "statuses", "resolve": "false"})
            url = f"{self.instance}/api/v2/search?{urlencode(params)}"
        headers = {"Accept": "application/json"}
        token = self.source.credentials.get("access_token") if self.source.credentials_encrypted else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return url, headers

    def read(self, key: str, cursor: SourceCursor, response: Response) -> base.Page:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise base.BadDocument(f"not JSON ({exc})") from None
        statuses = data.get("statuses") if isinstance(data, dict) else data
        if not isinstance(statuses, list):
            raise base.BadDocument("no list of statuses in the answer")
        newest = cursor.since_id
        for s in statuses:
            sid = str(s.get("id") or "") if isinstance(s, dict) else ""
            if sid and (not newest or base.id_greater(sid, newest)):
                newest = sid
        return base.Page(statuses, {"since_id": newest})

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return masto.normalise(item, now, instance=self.instance)
