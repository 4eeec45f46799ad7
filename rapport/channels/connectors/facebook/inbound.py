"""Facebook Page webhooks (`object: "page"`) → canonical messages.

- Messenger: `entry[].messaging[]` with `message` (text, attachments, `reply_to.mid`) or
  `postback` (a button press). Private; the DM thread is page id + sender PSID.
- Page feed: `entry[].changes[]` with `field: "feed"`, `item: comment|post|status`,
  `verb: add`. Public; a comment replies to its `parent_id` (post or comment).

Our own echoes (`message.is_echo`, feed items from the page itself), read/delivery receipts,
reactions and edits/removals carry nothing to answer and give no message. Any other event
is an UnknownEvent (dead-letter list)."""

from collections.abc import Callable
from typing import Any

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.meta.graph import (
    change_events,
    messaging_events,
    messaging_kind,
    millis,
    obj,
    parse,
    text,
)
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.FACEBOOK
IDENTITY = "facebook"


def attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    out = []
    items = message.get("attachments") or []
    for a in items[:20] if isinstance(items, list) else []:
        if not isinstance(a, dict):
            continue
        kind = text(a, "type", 20) or "file"
        payload = obj(a, "payload")
        out.append(
            Attachment(
                filename=text(payload, "title", 255) or kind,
                content_type={"image": "image/*", "video": "video/*", "audio": "audio/*"}.get(
                    kind, "application/octet-stream"
                ),
                url=text(payload, "url", 2000),
            )
        )
    return tuple(out)


def messaging_message(
    channel_kind: str, identity: str, entry: dict[str, Any], item: dict[str, Any]
) -> list[CanonicalMessage]:
    msg = obj(item, "message")
    if msg.get("is_echo"):
        return []
    sender, page = text(obj(item, "sender"), "id", 100), text(obj(item, "recipient"), "id", 100)
    mid = text(msg, "mid", 300)
    if not sender or not mid:
        raise NormaliseError("A messaging message needs sender.id and message.mid.")
    body = text(msg, "text")
    quick = text(obj(msg, "quick_reply"), "payload", 1000)
    atts = attachments(msg)
    if not (body or atts or quick):
        return []
    return [
        CanonicalMessage(
            channel_kind=channel_kind,
            external_id=mid,
            author=Author(kind=identity, value=sender, profile={"scoped_id": sender}),
            text=body or quick,
            sent_at=millis(item.get("timestamp")),
            in_reply_to=text(obj(msg, "reply_to"), "mid", 300),
            thread_id=f"{page or entry.get('id', '')}:{sender}",
            attachments=atts,
        )
    ]


def messaging_postback(
    channel_kind: str, identity: str, entry: dict[str, Any], item: dict[str, Any]
) -> list[CanonicalMessage]:
    postback = obj(item, "postback")
    sender, page = text(obj(item, "sender"), "id", 100), text(obj(item, "recipient"), "id", 100)
    if not sender:
        raise NormaliseError("A postback needs sender.id.")
    title = text(postback, "title", 1000) or text(postback, "payload", 1000)
    mid = text(postback, "mid", 300) or f"postback:{sender}:{item.get('timestamp', '')}"
    return [
        CanonicalMessage(
            channel_kind=channel_kind,
            external_id=mid,
            author=Author(kind=identity, value=sender, profile={"scoped_id": sender}),
            text=f"[Button] {title}" if title else "[Button pressed]",
            sent_at=millis(item.get("timestamp")),
            thread_id=f"{page or entry.get('id', '')}:{sender}",
        )
    ]


def _nothing(*args: Any) -> list[CanonicalMessage]:
    return []


def feed_change(entry: dict[str, Any], value: dict[str, Any]) -> list[CanonicalMessage]:
    item, verb = text(value, "item", 30), text(value, "verb", 30)
    author = obj(value, "from")
    author_id = text(author, "id", 100)
    if verb != "add" or item not in ("comment", "post", "status", "photo", "video"):
        return []  # edits, removals, likes, reactions: nothing to answer
    if author_id and author_id == text(entry, "id", 100):
        return []  # the page's own post or reply
    external = text(value, "comment_id", 300) if item == "comment" else text(value, "post_id", 300)
    if not external or not author_id:
        raise NormaliseError("A feed change needs from.id and a comment_id or post_id.")
    post_id = text(value, "post_id", 300)
    parent = text(value, "parent_id", 300) if item == "comment" else ""
    atts = (
        (Attachment(filename="photo", content_type="image/*", url=text(value, "photo", 2000)),)
        if text(value, "photo", 2000)
        else ()
    )
    body = text(value, "message")
    if not (body or atts):
        return []
    return [
        CanonicalMessage(
            channel_kind=KIND,
            external_id=external,
            author=Author(
                kind=IDENTITY,
                value=author_id,
                display_name=text(author, "name", 200),
                profile={"scoped_id": author_id},
            ),
            text=body,
            sent_at=millis(value.get("created_time")),
            parent_id=parent,
            references=(post_id,) if post_id and post_id != parent else (),
            is_public=True,
            attachments=atts,
        )
    ]


MESSAGING: dict[str, Callable[..., list[CanonicalMessage]]] = {
    "message": messaging_message,
    "postback": messaging_postback,
    "delivery": _nothing,
    "read": _nothing,
    "reaction": _nothing,
    "message_edit": _nothing,
}
CHANGES: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[CanonicalMessage]]] = {
    "feed": feed_change,
}
EVENTS = {
    **{f"messaging.{k}": v for k, v in MESSAGING.items()},
    **{f"changes.{k}": v for k, v in CHANGES.items()},
}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    data = parse(payload, "page")
    out: list[CanonicalMessage] = []
    for entry, item in messaging_events(data):
        kind = messaging_kind(item)
        handler = MESSAGING.get(kind)
        if handler is None:
            raise UnknownEvent(f"Unknown Messenger event {kind!r}.")
        out.extend(handler(KIND, IDENTITY, entry, item))
    for entry, change in change_events(data):
        field = text(change, "field", 60)
        handler2 = CHANGES.get(field)
        if handler2 is None:
            raise UnknownEvent(f"Unknown Page change field {field!r}; subscribe to feed only.")
        out.extend(handler2(entry, obj(change, "value")))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]
