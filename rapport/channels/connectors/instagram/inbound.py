"""Instagram webhooks (`object: "instagram"`) → canonical messages.

- Direct messages: `entry[].messaging[]`, the Messenger format with Instagram-scoped ids.
- `entry[].changes[]` `field: "comments"`: a comment on our media (public; `from.username`
  is the author's handle, so a known Instagram identity finds the person).
- `field: "mentions"`: we were @mentioned in a comment. Meta sends only the media and
  comment ids; the message says so and links them (fetching the text needs a Graph call,
  which normalising must not do)."""

from collections.abc import Callable
from typing import Any

from rapport.channels.base import Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.facebook.inbound import MESSAGING
from rapport.channels.connectors.meta.graph import (
    change_events,
    messaging_events,
    messaging_kind,
    obj,
    parse,
    text,
)
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.INSTAGRAM
IDENTITY = "instagram"


def comments(entry: dict[str, Any], value: dict[str, Any]) -> list[CanonicalMessage]:
    author = obj(value, "from")
    comment_id, username = text(value, "id", 300), text(author, "username", 100)
    if not comment_id or not (username or text(author, "id", 100)):
        raise NormaliseError("A comments change needs id and from.")
    if text(author, "id", 100) and text(author, "id", 100) == text(entry, "id", 100):
        return []  # our own reply
    media = text(obj(value, "media"), "id", 300)
    parent = text(value, "parent_id", 300)
    return [
        CanonicalMessage(
            channel_kind=KIND,
            external_id=comment_id,
            author=Author(
                kind=IDENTITY,
                value=username or text(author, "id", 100),
                profile={"scoped_id": text(author, "id", 100), "media_id": media},
            ),
            text=text(value, "text") or "[Comment without text]",
            parent_id=parent,
            references=(media,) if media else (),
            is_public=True,
        )
    ]


def mentions(entry: dict[str, Any], value: dict[str, Any]) -> list[CanonicalMessage]:
    media, comment = text(value, "media_id", 300), text(value, "comment_id", 300)
    if not media:
        raise NormaliseError("A mentions change needs media_id.")
    where = f"comment {comment} on media {media}" if comment else f"media {media}"
    return [
        CanonicalMessage(
            channel_kind=KIND,
            external_id=comment or f"mention:{media}",
            author=Author(kind=IDENTITY, value="", profile={"media_id": media, "comment_id": comment}),
            text=f"[Mentioned us in {where}; open it on Instagram to read it]",
            references=(media,),
            is_public=True,
        )
    ]


CHANGES: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[CanonicalMessage]]] = {
    "comments": comments,
    "mentions": mentions,
}
EVENTS = {
    **{f"messaging.{k}": v for k, v in MESSAGING.items()},
    **{f"changes.{k}": v for k, v in CHANGES.items()},
}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    data = parse(payload, "instagram")
    out: list[CanonicalMessage] = []
    for entry, item in messaging_events(data):
        kind = messaging_kind(item)
        handler = MESSAGING.get(kind)
        if handler is None:
            raise UnknownEvent(f"Unknown Instagram messaging event {kind!r}.")
        out.extend(handler(KIND, IDENTITY, entry, item))
    for entry, change in change_events(data):
        field = text(change, "field", 60)
        handler2 = CHANGES.get(field)
        if handler2 is None:
            raise UnknownEvent(f"Unknown Instagram change field {field!r}.")
        out.extend(handler2(entry, obj(change, "value")))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]
