"""Bluesky `app.bsky.notification.listNotifications` pages → canonical messages. Reasons
`mention`, `reply` and `quote` give a public message; `like`, `repost`, `follow` and
`starterpack-joined` nothing; anything else is an UnknownEvent. The external id is the
post's `at://` URI; a reply threads on `record.reply.parent.uri` (and `root.uri`). The
author is the handle (kind `bluesky`), the DID in the profile."""

import json
from collections.abc import Callable
from typing import Any

from django.utils.dateparse import parse_datetime

from rapport.channels.base import Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.meta.graph import obj, text
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.BLUESKY


def _post(note: dict[str, Any]) -> list[CanonicalMessage]:
    uri, author, record = text(note, "uri", 300), obj(note, "author"), obj(note, "record")
    handle = text(author, "handle", 253)
    if not uri.startswith("at://") or not (handle or text(author, "did", 200)):
        raise NormaliseError("A post notification needs an at:// uri and an author.")
    reply = obj(record, "reply")
    parent, root = text(obj(reply, "parent"), "uri", 300), text(obj(reply, "root"), "uri", 300)
    created = text(record, "createdAt", 40)
    try:
        sent = parse_datetime(created) if created else None
    except ValueError:
        sent = None
    return [
        CanonicalMessage(
            channel_kind=KIND,
            external_id=uri,
            author=Author(
                kind="bluesky",
                value=handle if handle and handle != "handle.invalid" else text(author, "did", 200),
                display_name=text(author, "displayName", 200),
                profile={"did": text(author, "did", 200)},
            ),
            text=text(record, "text", 10_000),
            sent_at=sent,
            parent_id=parent,
            references=(root,) if root and root != parent else (),
            is_public=True,
        )
    ]


EVENTS: dict[str, Callable[[dict[str, Any]], list[CanonicalMessage]]] = {
    "mention": _post,
    "reply": _post,
    "quote": _post,
    **{r: (lambda note: []) for r in ("like", "repost", "follow", "starterpack-joined")},
}


def notifications(payload: RawPayload) -> list[dict[str, Any]]:
    try:
        data = json.loads(payload.body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    notes = data.get("notifications") if isinstance(data, dict) else None
    if not isinstance(notes, list) or not all(isinstance(n, dict) for n in notes):
        raise NormaliseError('Expected {"notifications": [...]}.')
    return notes


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    out: list[CanonicalMessage] = []
    for note in notifications(payload):
        handler = EVENTS.get(text(note, "reason", 40))
        if handler is None:
            raise UnknownEvent(f"Unknown Bluesky notification reason {text(note, 'reason', 40)!r}.")
        out.extend(handler(note))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]
