"""Fallback when the Account Activity webhook is not available (it needs an Enterprise
tier): `GET /2/users/:id/mentions?since_id=…`. Each page is stored as one RawPayload (event
`mentions.v2`, delivery id = the newest tweet id) **then** `since_id` advances in
`Channel.settings["x_since_id"]`; tweet ids are the same as the webhook's, so a mention
seen both ways is one message."""

import json
from urllib.parse import urlencode

from django.db import transaction

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.x.transport import call
from rapport.channels.models import Channel

FIELDS = {
    "max_results": "100",
    "tweet.fields": "created_at,conversation_id,in_reply_to_user_id,referenced_tweets,author_id",
    "expansions": "author_id",
    "user.fields": "username,name",
}


def poll(channel: Channel) -> int:
    """Returns the number of tweets stored (0 when another worker holds the poll)."""
    if not http.claim_poll(channel):
        return 0
    user_id = str(channel.credentials.get("user_id", ""))
    if not user_id:
        raise http.ApiError("This X channel has no user_id.", permanent=True)
    params = dict(FIELDS)
    since = str((channel.settings or {}).get("x_since_id", ""))
    if since:
        params["since_id"] = since
    data = call(channel, "GET", f"/2/users/{user_id}/mentions?{urlencode(params)}")
    tweets = (data or {}).get("data") or []
    if not tweets:
        return 0
    newest = str(
        ((data or {}).get("meta") or {}).get("newest_id") or max((t.get("id", "0") for t in tweets), key=int)
    )
    body = json.dumps(data, separators=(",", ":")).encode()
    with transaction.atomic():
        payload, created = payload_store(
            channel=channel,
            body=body,
            headers={"X-Rapport-Event": "mentions.v2"},
            delivery_id=f"x-mentions:{newest}",
        )
        if created:
            enqueue_processing(payload)
    http.save_cursor(channel, x_since_id=newest)
    return len(tweets)
