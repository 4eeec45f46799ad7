"""Poll `app.bsky.notification.listNotifications` (newest first, 50). There is no since_id:
the page keeps only notifications indexed after `settings.bluesky_seen_at`, is stored as one
RawPayload (delivery id = newest indexedAt + uri), **then** the cursor advances. Post URIs are
the message ids, so overlap is harmless."""

import json

from django.db import transaction

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.connectors.bluesky.transport import xrpc
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel


def poll(channel: Channel) -> int:
    if not http.claim_poll(channel):
        return 0
    data = xrpc(channel, "GET", "app.bsky.notification.listNotifications", query="limit=50") or {}
    seen = str((channel.settings or {}).get("bluesky_seen_at", ""))
    notes = [
        n
        for n in data.get("notifications") or []
        if isinstance(n, dict) and str(n.get("indexedAt", "")) > seen
    ]
    if not notes:
        return 0
    newest = max(notes, key=lambda n: str(n.get("indexedAt", "")))
    body = json.dumps({"notifications": notes}, separators=(",", ":")).encode()
    with transaction.atomic():
        payload, created = payload_store(
            channel=channel,
            body=body,
            headers={},
            delivery_id=f"bsky:{newest.get('indexedAt')}:{newest.get('uri')}"[:200],
        )
        if created:
            enqueue_processing(payload)
    http.save_cursor(channel, bluesky_seen_at=str(newest.get("indexedAt", "")))
    return len(notes)
