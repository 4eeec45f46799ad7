"""Poll `GET {instance}/api/v1/notifications?types[]=mention&since_id=…` (newest first, up to
40), store the page as one RawPayload (delivery id = the newest notification id) **then**
advance `settings.mastodon_since_id`. Status ids are the message ids, so a page fetched twice
adds nothing."""

import json
from urllib.parse import urlencode

from django.db import transaction

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.connectors.mastodon.transport import call
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel


def poll(channel: Channel) -> int:
    if not http.claim_poll(channel):
        return 0
    params = [("types[]", "mention"), ("limit", "40")]
    since = str((channel.settings or {}).get("mastodon_since_id", ""))
    if since:
        params.append(("since_id", since))
    notes = call(channel, "GET", f"/api/v1/notifications?{urlencode(params)}")
    if not isinstance(notes, list) or not notes:
        return 0
    newest = max((str(n.get("id", "0")) for n in notes if isinstance(n, dict)), key=lambda v: (len(v), v))
    body = json.dumps(notes, separators=(",", ":")).encode()
    with transaction.atomic():
        payload, created = payload_store(
            channel=channel, body=body, headers={}, delivery_id=f"mastodon:{newest}"
        )
        if created:
            enqueue_processing(payload)
    http.save_cursor(channel, mastodon_since_id=newest)
    return len(notes)
