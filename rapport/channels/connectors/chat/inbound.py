"""Web chat → canonical messages. The widget's POST is stored as the raw payload:

    {"event": "message", "visitor": "<visitor id>", "client_id": "<id the widget made>",
     "text": "...", "email": "", "name": "", "page": "https://shop.example/basket"}

The visitor id comes from the verified token, never from the browser's JSON (the view writes
it). The external id is visitor + client id, so a message the widget sends twice is stored
once; the thread id is the visitor, so all of a visitor's messages form one conversation.
An anonymous visitor has no usable identity (no person is created); once they give an
email, identity resolution links the message to the person with that email."""

import contextlib
import json
from typing import Any

from rapport.channels.base import Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.models import Channel, ChannelKind, RawPayload
from rapport.people.identities import IdentityError
from rapport.people.identities import normalise as normalise_identity

MAX_TEXT = 5000
ANONYMOUS_KIND = "chat"  # not an IdentityKind: the pipeline makes no person from it


def _s(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise NormaliseError(f"“{key}” must be a string.")
    if len(value) > limit:
        raise NormaliseError(f"“{key}” is longer than {limit} characters.")
    return value.replace("\x00", "")


def _message(data: dict[str, Any]) -> list[CanonicalMessage]:
    visitor, client_id = _s(data, "visitor", 64), _s(data, "client_id", 64)
    if not visitor or not client_id:
        raise NormaliseError("A chat message needs a visitor and a client id.")
    text = _s(data, "text", MAX_TEXT).strip()
    if not text:
        raise NormaliseError("The chat message is empty.")
    name = " ".join(_s(data, "name", 200).split())
    email = _s(data, "email", 320).strip()
    author = Author(kind=ANONYMOUS_KIND, value=visitor, display_name=name or "Website visitor")
    if email:
        # A mistyped address keeps the visitor anonymous rather than losing the message.
        with contextlib.suppress(IdentityError):
            author = Author(kind="email", value=normalise_identity("email", email), display_name=name)
    page = _s(data, "page", 2000)
    return [
        CanonicalMessage(
            channel_kind=ChannelKind.CHAT,
            external_id=f"{visitor}:{client_id}",
            author=Author(
                kind=author.kind,
                value=author.value,
                display_name=author.display_name,
                profile={"chat_page": page[:500]} if page else {},
            ),
            text=text,
            subject=text.splitlines()[0][:80] if text else "",
            thread_id=f"chat:{visitor}",
            is_public=False,
        )
    ]


EVENTS = {"message": _message}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    try:
        data = json.loads(payload.body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    if not isinstance(data, dict):
        raise NormaliseError("The body must be a JSON object.")
    event = data.get("event")
    handler = EVENTS.get(event) if isinstance(event, str) else None
    if handler is None:
        raise UnknownEvent(f"Unknown event {str(event)[:50]!r}; expected “message”.")
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in handler(data)]
