"""WhatsApp Cloud API webhooks (`object: "whatsapp_business_account"`) → canonical messages.

`entry[].changes[]` with `field: "messages"`; `value.messages[]` are inbound messages
(text, image, audio, video, document, sticker, location, contacts, interactive, button,
reaction), `value.statuses[]` are receipts for what we sent (sent, delivered, read, failed)
and give no message: `receipts()` reads them and the webhook view applies them to the
outbound messages' delivery status. The sender is a phone number (`wa_id` without "+"), so
the author is a phone identity: the same person as on SMS and voice."""

from collections.abc import Callable
from typing import Any

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.meta.graph import change_events, millis, obj, parse, text
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.WHATSAPP
MEDIA = ("image", "audio", "video", "document", "sticker")


def _media(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    media = obj(msg, kind)
    att = Attachment(
        filename=text(media, "filename", 255) or f"{kind}-{text(media, 'id', 100)}",
        content_type=text(media, "mime_type", 100) or "application/octet-stream",
        url=f"whatsapp-media:{text(media, 'id', 200)}",  # fetched later with GET /{media-id}
    )
    return text(media, "caption"), (att,)


def _location(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    loc = obj(msg, "location")
    lat, lon = text(loc, "latitude", 30), text(loc, "longitude", 30)
    label = " — ".join(p for p in (text(loc, "name", 200), text(loc, "address", 300)) if p)
    return (
        f"[Location] {label + ' ' if label else ''}https://www.openstreetmap.org/?mlat={lat}&mlon={lon}",
        (),
    )


def _contacts(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    names = []
    for c in (msg.get("contacts") or [])[:20]:
        name = text(obj(c, "name"), "formatted_name", 200)
        phones = ", ".join(text(p, "phone", 40) for p in (c.get("phones") or [])[:5] if isinstance(p, dict))
        names.append(f"{name} {phones}".strip())
    return "[Contact card] " + "; ".join(n for n in names if n), ()


def _interactive(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    inter = obj(msg, "interactive")
    reply = obj(inter, "button_reply") or obj(inter, "list_reply")
    return f"[Choice] {text(reply, 'title', 200)}", ()


def _button(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    return f"[Button] {text(obj(msg, 'button'), 'text', 200)}", ()


def _text(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    return text(obj(msg, "text"), "body"), ()


def _reaction(kind: str, msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    return f"[Reaction] {text(obj(msg, 'reaction'), 'emoji', 20)}", ()


MESSAGE_TYPES: dict[str, Callable[[str, dict[str, Any]], tuple[str, tuple[Attachment, ...]]]] = {
    "text": _text,
    **{m: _media for m in MEDIA},
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "unsupported": lambda kind, msg: ("[A message type WhatsApp does not pass on]", ()),
}


def _messages(value: dict[str, Any]) -> list[CanonicalMessage]:
    phone_id = text(obj(value, "metadata"), "phone_number_id", 100)
    names = {
        text(c, "wa_id", 40): text(obj(c, "profile"), "name", 200)
        for c in (value.get("contacts") or [])
        if isinstance(c, dict)
    }
    out = []
    for msg in value.get("messages") or []:
        if not isinstance(msg, dict):
            raise NormaliseError("value.messages[] must be objects.")
        sender, mid, kind = text(msg, "from", 40), text(msg, "id", 300), text(msg, "type", 30)
        if not sender or not mid:
            raise NormaliseError("A WhatsApp message needs from and id.")
        handler = MESSAGE_TYPES.get(kind)
        if handler is None:
            raise UnknownEvent(f"Unknown WhatsApp message type {kind!r}.")
        body, atts = handler(kind, msg)
        reply_to = text(obj(msg, "context"), "id", 300) or (
            text(obj(msg, "reaction"), "message_id", 300) if kind == "reaction" else ""
        )
        out.append(
            CanonicalMessage(
                channel_kind=KIND,
                external_id=mid,
                author=Author(
                    kind="phone",
                    value="+" + sender.lstrip("+"),
                    display_name=names.get(sender, ""),
                    profile={"wa_id": sender},
                ),
                text=body or (f"[{kind}]" if atts else ""),
                sent_at=millis(msg.get("timestamp")),
                in_reply_to=reply_to,
                thread_id=f"wa:{phone_id}:{sender}",
                attachments=atts,
            )
        )
    return out


EVENTS: dict[str, Callable[[dict[str, Any]], list[CanonicalMessage]]] = {"messages": _messages}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    data = parse(payload, "whatsapp_business_account")
    out: list[CanonicalMessage] = []
    for _entry, change in change_events(data):
        field = text(change, "field", 60)
        handler = EVENTS.get(field)
        if handler is None:
            raise UnknownEvent(f"Unknown WhatsApp change field {field!r}; subscribe to messages only.")
        out.extend(handler(obj(change, "value")))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]


def receipts(payload: RawPayload) -> list[tuple[str, str, str]]:
    """(our message id, status, error) for every `statuses[]` entry; [] when unreadable
    (the payload's own processing reports that)."""
    try:
        data = parse(payload, "whatsapp_business_account")
        changes = change_events(data)
    except NormaliseError:
        return []
    out = []
    for _entry, change in changes:
        for st in obj(change, "value").get("statuses") or []:
            if not isinstance(st, dict) or not text(st, "id", 300):
                continue
            errors = st.get("errors") or []
            error = ""
            if errors and isinstance(errors[0], dict):
                error = f"{text(errors[0], 'code', 20)} {text(errors[0], 'title', 200)}".strip()
            out.append((text(st, "id", 300), text(st, "status", 20), error))
    return out
