"""Email attachments need no fetch: their bytes are in the raw message the poller stored.
The message is parsed again and its leaf parts are matched, in document order, to the
attachment list inbound.walk() made (same sanitised name, type and decoded size), so an
attachment always gets the bytes of its own part. Nothing is decompressed or executed."""

from email.message import Message as MimePart
from typing import Any

from rapport.channels.base import NormaliseError
from rapport.channels.connectors.email import inbound
from rapport.channels.media import MediaError, Source
from rapport.channels.models import Channel

# One parsed message per process: a message's attachments are fetched one after the other.
_last: tuple[Any, list[bytes | None]] = (None, [])


def _decoded(part: MimePart) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # crafted transfer encodings: the part is what its payload string is
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else b""


def contents(raw: bytes, attachments: list[Any]) -> list[bytes | None]:
    """The bytes of each attachment of the raw message, None where no part matches."""
    try:
        msg = inbound.parse(raw)
    except NormaliseError as exc:
        raise MediaError(f"The raw email cannot be read again: {exc}", permanent=True)
    # Pre-order like inbound.walk, which numbers parts the same way (the "part-N" names).
    leaves = [(n, p) for n, p in enumerate(msg.walk(), 1) if not p.is_multipart()]
    found: list[bytes | None] = []
    start = 0
    for att in attachments:
        att = att if isinstance(att, dict) else {}
        match = None
        for pos in range(start, len(leaves)):
            n, part = leaves[pos]
            try:
                name = part.get_filename() or ""
            except Exception:
                name = ""
            if inbound.safe_filename(name, fallback=f"part-{n}") != att.get("filename"):
                continue
            if inbound._content_type(part) != att.get("content_type"):
                continue
            data = _decoded(part)
            if att.get("size") not in (None, len(data)):
                continue
            match, start = data, pos + 1
            break
        found.append(match)
    return found


def source(channel: Channel, message: Any, index: int, attachment: dict[str, Any]) -> Source:
    global _last
    payload = message.raw_payload
    if payload is None:
        raise MediaError("The raw email of this message is no longer kept.", permanent=True)
    # The receive time is part of the key: SQLite may give a rolled-back id to a new payload.
    key = (message.pk, payload.pk, payload.received_at)
    if _last[0] != key:
        _last = (key, contents(payload.body_bytes, list(message.attachments or [])))
    parts = _last[1]
    data = parts[index] if index < len(parts) else None
    if data is None:
        raise MediaError("No part of the raw email matches this attachment.", permanent=True)
    return Source(data=data)
