"""Generic webhook → canonical messages. The payload format is documented in doc.md:

    {"event": "message", "id": "<delivery id>", "message": {"id": "...", "author": {...}, ...}}

Event table: "message" gives one message, "ping" none; anything else is an UnknownEvent and
goes to the dead-letter list."""

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.utils.dateparse import parse_datetime

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.models import Channel, ChannelKind, RawPayload


def _str(data: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str | int):
        raise NormaliseError(f"“{key}” must be a string.")
    value = str(value)
    if required and not value.strip():
        raise NormaliseError(f"“{key}” is required.")
    if len(value) > limit:
        raise NormaliseError(f"“{key}” is longer than {limit} characters.")
    return value.replace("\x00", "")


def _when(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise NormaliseError("“sent_at” must be an ISO 8601 string.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise NormaliseError("“sent_at” must be an ISO 8601 date-time with a time zone.")
    return parsed


def _message(data: dict[str, Any]) -> list[CanonicalMessage]:
    msg = data.get("message")
    if not isinstance(msg, dict):
        raise NormaliseError("A message event needs a “message” object.")
    author = msg.get("author")
    if not isinstance(author, dict):
        raise NormaliseError("A message needs an “author” object.")
    profile = author.get("profile") or {}
    if not isinstance(profile, dict):
        raise NormaliseError("“author.profile” must be an object.")
    refs = msg.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) and len(r) <= 300 for r in refs):
        raise NormaliseError("“references” must be a list of strings.")
    atts = msg.get("attachments") or []
    if not isinstance(atts, list) or not all(isinstance(a, dict) for a in atts):
        raise NormaliseError("“attachments” must be a list of objects.")
    attachments = []
    for a in atts[:100]:
        size = a.get("size", 0)
        attachments.append(
            Attachment(
                filename=_str(a, "filename", 255) or "attachment",
                content_type=_str(a, "content_type", 100) or "application/octet-stream",
                size=size if isinstance(size, int) and size >= 0 else 0,
                url=_str(a, "url", 2000),
            )
        )
    text, html = _str(msg, "text", 100_000), _str(msg, "html", 1_000_000)
    if not (text.strip() or html.strip() or attachments):
        raise NormaliseError("The message has no text, HTML or attachment.")
    return [
        CanonicalMessage(
            channel_kind=ChannelKind.WEBHOOK,
            external_id=_str(msg, "id", 300, required=True),
            author=Author(
                kind=_str(author, "kind", 12, required=True),
                value=_str(author, "value", 320, required=True),
                display_name=_str(author, "name", 200),
                profile=profile,
            ),
            text=text,
            html=html,
            subject=_str(msg, "subject", 300),
            sent_at=_when(msg.get("sent_at")),
            in_reply_to=_str(msg, "in_reply_to", 300),
            references=tuple(refs[-50:]),
            parent_id=_str(msg, "parent_id", 300),
            thread_id=_str(msg, "thread_id", 300),
            is_public=bool(msg.get("public", False)),
            attachments=tuple(attachments),
        )
    ]


EVENTS: dict[str, Callable[[dict[str, Any]], list[CanonicalMessage]]] = {
    "message": _message,
    "ping": lambda data: [],
}


def parse(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    if not isinstance(data, dict):
        raise NormaliseError("The body must be a JSON object.")
    return data


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    data = parse(payload.body_bytes)
    event = data.get("event")
    handler = EVENTS.get(event) if isinstance(event, str) else None
    if handler is None:
        raise UnknownEvent(f"Unknown event {str(event)[:50]!r}; expected one of {', '.join(EVENTS)}.")
    messages = handler(data)
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in messages]
