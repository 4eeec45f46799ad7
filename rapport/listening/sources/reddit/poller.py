"""Reddit search (`GET /search.json?sort=new`). The cursor keeps the fullname of the newest
post read and asks with `before=` for anything newer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from rapport.listening.http import Response
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.reddit import normalise as rn

API = "https://www.reddit.com/search.json"


class Poller(base.Poller):
    kind = "reddit"

    def keys(self) -> list[str]:
        return [f"search:{t}" for t in self.terms()][:20]

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        params = {"q": key.partition(":")[2], "sort": "new", "limit": "100", "raw_json": "1"}
        if cursor.since_id:
            params["before"] = cursor.since_id
        return f"{self.config.get('api') or API}?{urlencode(params)}", {"Accept": "application/json"}

    def read(self, key: str, cursor: SourceCursor, response: Response) -> base.Page:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise base.BadDocument(f"not JSON ({exc})") from None
        listing = data.get("data") if isinstance(data, dict) else None
        children = listing.get("children") if isinstance(listing, dict) else None
        if not isinstance(children, list):
            raise base.BadDocument("not a Listing")
        # Newest first (sort=new): the first child's fullname is where the next poll starts.
        newest = cursor.since_id
        for c in children:
            name = str(base.obj(base.obj(c).get("data")).get("name") or "")
            if name:
                newest = name
                break
        return base.Page(children, {"since_id": newest})

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return rn.normalise(item, now)
