"""Mastodon notifications (`GET /api/v1/notifications?types[]=mention`) → canonical messages.
The poller stores each page as one payload (a JSON list of notifications). A mention whose
status has `visibility: direct` is a DM (private); others are public. `in_reply_to_id`
threads. The author is the account's full address (`acct`, with the instance added for
local accounts), kind `mastodon`. Content is HTML: it is kept as HTML for the pipeline to
sanitise, and turned into text with nh3 (tags stripped, entities decoded)."""

import html as htmllib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import nh3
from django.utils.dateparse import parse_datetime

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.meta.graph import obj, text
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.MASTODON
_BREAKS = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.I)


def html_to_text(content: str) -> str:
    spaced = _BREAKS.sub("\n", content)
    return htmllib.unescape(nh3.clean(spaced, tags=set())).strip()


def instance_host(channel: Channel) -> str:
    return (urlsplit(str((channel.settings or {}).get("instance_url", ""))).hostname or "").lower()


def _mention(channel: Channel, note: dict[str, Any]) -> list[CanonicalMessage]:
    status, account = obj(note, "status"), obj(note, "account")
    sid, acct = text(status, "id", 100), text(account, "acct", 200)
    if not sid or not acct:
        raise NormaliseError("A mention needs status.id and account.acct.")
    if "@" not in acct and instance_host(channel):
        acct = f"{acct}@{instance_host(channel)}"
    content = text(status, "content", 500_000)
    atts = tuple(
        Attachment(
            filename=text(a, "description", 200) or text(a, "id", 100) or "media",
            content_type={"image": "image/*", "video": "video/*", "gifv": "video/*", "audio": "audio/*"}.get(
                text(a, "type", 20), "application/octet-stream"
            ),
            url=text(a, "url", 2000),
        )
        for a in (status.get("media_attachments") or [])[:10]
        if isinstance(a, dict)
    )
    visibility = text(status, "visibility", 20)
    created = text(status, "created_at", 40)
    return [
        CanonicalMessage(
            channel_kind=KIND,
            external_id=sid,
            author=Author(
                kind="mastodon",
                value=acct,
                display_name=text(account, "display_name", 200),
                profile={"account_id": text(account, "id", 100), "url": text(account, "url", 500)},
            ),
            text=html_to_text(content),
            html=content,
            sent_at=parse_datetime(created) if created else None,
            in_reply_to=text(status, "in_reply_to_id", 100),
            is_public=visibility in ("public", "unlisted"),
            attachments=atts,
        )
    ]


EVENTS: dict[str, Callable[[Channel, dict[str, Any]], list[CanonicalMessage]]] = {
    "mention": _mention,
    "favourite": lambda c, n: [],
    "reblog": lambda c, n: [],
    "follow": lambda c, n: [],
}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    try:
        notes = json.loads(payload.body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    if not isinstance(notes, list) or not all(isinstance(n, dict) for n in notes):
        raise NormaliseError("Expected a list of notifications.")
    out: list[CanonicalMessage] = []
    for note in notes:
        handler = EVENTS.get(text(note, "type", 40))
        if handler is None:
            raise UnknownEvent(f"Unknown Mastodon notification type {text(note, 'type', 40)!r}.")
        out.extend(handler(channel, note))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]
