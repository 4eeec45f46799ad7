"""X recent search with `since_id`: each search term keeps the newest tweet id it has seen
(`meta.newest_id`). Needs an app bearer token in the source's credentials (`bearer_token`).
Rate limits: 429 with `x-rate-limit-reset` (epoch seconds) is honoured."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from rapport.listening.http import Response
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.x import normalise as xn

API = "https://api.x.com/2/tweets/search/recent"


class Poller(base.Poller):
    kind = "x"

    def keys(self) -> list[str]:
        return [f"search:{t}" for t in self.terms()][:20]

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        term = key.partition(":")[2]
        params = {"query": xn.without_retweets(term), "max_results": "100", **xn.FIELDS}
        if cursor.since_id:
            params["since_id"] = cursor.since_id
        api = str(self.config.get("api") or API)
        return f"{api}?{urlencode(params)}", xn.auth_headers(self.source)

    def read(self, key: str, cursor: SourceCursor, response: Response) -> base.Page:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise base.BadDocument(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise base.BadDocument("the answer is not an object")
        tweets = data.get("data") or []
        if not isinstance(tweets, list):
            raise base.BadDocument("data is not a list")
        self._users = xn.users_by_id(data)
        meta = base.obj(data.get("meta"))
        newest = str(meta.get("newest_id") or "")
        if not newest or (cursor.since_id and not base.id_greater(newest, cursor.since_id)):
            newest = cursor.since_id
        return base.Page(tweets, {"since_id": newest})

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return xn.normalise(item, now, users=getattr(self, "_users", {}))
