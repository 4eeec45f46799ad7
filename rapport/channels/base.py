"""What every connector produces and raises: one canonical message, typed errors.

A connector's `inbound.normalise(channel, payload)` turns a stored RawPayload into
CanonicalMessages; its `transport.send(channel, message)` delivers an outbound Message. The
rest of the pipeline (identity, threading, scoring, routing) knows nothing of platforms."""

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any


class NormaliseError(Exception):
    """The payload cannot become a message (malformed, unknown event). It goes to the
    dead-letter list with this message as the reason; it is never dropped silently."""


class UnknownEvent(NormaliseError):
    pass


class SignatureError(Exception):
    """The request is not from the platform (bad or missing signature, replay)."""


class TransportError(Exception):
    """Outbound delivery failed. `permanent` failures (revoked token, unknown recipient)
    disable the channel and are not retried; the others are retried with backoff."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Author:
    kind: str  # an IdentityKind: email, phone, x, mastodon…
    value: str  # as the platform gives it; normalised during identity resolution
    display_name: str = ""
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str = "application/octet-stream"
    size: int = 0
    url: str = ""  # where the platform serves it; fetched later, never inline

    def as_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "url": self.url,
        }


@dataclass(frozen=True)
class CanonicalMessage:
    channel_kind: str
    external_id: str
    author: Author
    text: str = ""
    html: str = ""
    subject: str = ""
    sent_at: dt.datetime | None = None
    # Threading keys, strongest first: explicit reply targets, then a DM/thread id.
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    parent_id: str = ""
    thread_id: str = ""
    is_public: bool = False
    attachments: tuple[Attachment, ...] = ()
    raw_ref: int | None = None  # RawPayload id

    def reply_keys(self) -> list[str]:
        """External ids of earlier messages this one answers, most specific first."""
        keys = [self.in_reply_to, self.parent_id, *reversed(self.references)]
        return list(dict.fromkeys(k for k in keys if k))


def content_hash_id(*parts: str) -> str:
    """A deterministic external id when the platform gives none (email without Message-ID):
    the same message fetched twice gets the same id, so it is stored once."""
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def email_external_id(*, message_id: str, from_: str, date: str, subject: str, body: str) -> str:
    message_id = (message_id or "").strip()
    if message_id:
        return message_id.strip("<>").strip()[:300] or content_hash_id(from_, date, subject, body)
    return content_hash_id(from_.strip().lower(), date.strip(), subject.strip(), body)


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
