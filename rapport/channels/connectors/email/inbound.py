"""Raw RFC 5322 message (as fetched from IMAP) → one canonical message.

Email is hostile input: anything may be broken, mislabelled or crafted. Every step here
degrades instead of crashing: unknown charsets decode as UTF-8 with replacement characters,
header values lose CR/LF and other control characters (header injection), a missing or
invalid date becomes the time we received the message, a missing Message-ID becomes a
deterministic hash (so fetching the same message twice stores it once). What cannot be read
at all (not a message, nesting deeper than MAX_DEPTH) raises NormaliseError and goes to the
dead-letter list with the reason. Attachments are metadata only: never decompressed, never
stored inline, never executed. HTML is passed on untouched; the pipeline sanitises it.

Pure: no database, no network. A channel in BCC-log mode is the exception: its messages are
not customer conversations, so `normalise` hands them to `bcc.log_payload` (see bcc.py)."""

import codecs
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, cast

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, email_external_id
from rapport.channels.models import Channel, ChannelKind, RawPayload

MAX_DEPTH = 16  # real mail nests 3–6 levels; forward chains rarely more than 10
MAX_PARTS = 500
MAX_ATTACHMENTS = 100
MAX_TEXT = 100_000
MAX_HTML = 1_000_000
MAX_HEADER = 2000
MAX_REFERENCES = 50
# Set by the poller on a message too large to fetch whole: only its header was stored.
TRUNCATED_HEADER = "X-Rapport-Truncated"


class _CachingPolicy(EmailPolicy):
    """policy.default, remembering parsed headers. The modern policy parses a header again on
    every read, and the parser and our walk read Content-Type and friends a dozen times per
    message (most of the time spent on a message in profiles); the same raw value always
    parses to the same (immutable) header object, and most values repeat across messages.
    Bounded: hostile mail cannot grow it, long values are not kept, a failing parse is not
    cached (it raises again, as before)."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name") or len(value) > _CACHED_HEADER_LEN:
            return super().header_fetch_parse(name, value)
        key = (name, value)
        found = _HEADER_CACHE.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
                _HEADER_CACHE.clear()
            _HEADER_CACHE[key] = found
        return found


_CACHED_HEADER_LEN = 1000
_HEADER_CACHE_SIZE = 4096
_HEADER_CACHE: dict[tuple[str, str], Any] = {}
POLICY = _CachingPolicy()

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\u0085]")
_MSGID = re.compile(r"<([^<>\s]{1,300})>")
_UNSAFE_NAME = re.compile(r"[^\w .,()\[\]+@=-]", re.UNICODE)


def clean_header(value: Any, limit: int = MAX_HEADER) -> str:
    """A header value fit for one line: CR/LF (raw or decoded from =?..?= words) and other
    control characters become spaces, so nothing downstream can inject a header."""
    text = str(value or "")
    text = _CONTROL.sub(" ", text).replace("\t", " ")
    return " ".join(text.split())[:limit]


def _raw_header(msg: Message, name: str) -> str:
    """The header as the sender wrote it, for when the policy's parser chokes on it."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def raw_header(msg: Message, name: str, limit: int = MAX_HEADER) -> str:
    """Message ids exactly as written: the policy's parser may rewrite an odd-looking id, and
    threading needs the same string the other side put in its References."""
    return clean_header(_raw_header(msg, name), limit)


def header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # the policy's header parsers have had crash bugs on crafted input
        value = _raw_header(msg, name)
    return clean_header(value) if value is not None else ""


def all_headers(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except Exception:
        values = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
    return [clean_header(v) for v in values[:20]]


def addresses(msg: Message, *names: str) -> list[tuple[str, str]]:
    """[(display name, address)] from the given headers; malformed entries are skipped."""
    values = [header(msg, name) for name in names]
    found: list[tuple[str, str]] = []
    try:
        pairs = getaddresses([v for v in values if v])
    except Exception:
        return []
    for name, addr in pairs:
        addr = clean_header(addr, 320).strip("<>").strip()
        if "@" in addr and " " not in addr and addr.count("@") == 1:
            found.append((clean_header(name, 200), addr))
    return found


def message_ids(value: str) -> list[str]:
    """Message-ids in a References/In-Reply-To header, without angle brackets (that is how
    the pipeline stores external ids)."""
    ids = _MSGID.findall(value or "")
    if not ids and value.strip() and " " not in value.strip():
        ids = [value.strip().strip("<>")]
    return list(dict.fromkeys(i for i in ids if i))


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() or "utf-8"
        codecs.lookup(charset)
        return charset
    except (LookupError, ValueError, TypeError):
        return "utf-8"


def decode_text(part: Message) -> str:
    try:
        decoded = part.get_payload(decode=True)
    except Exception:
        decoded = None
    # decode=True gives bytes for a leaf part and None for a multipart one.
    if isinstance(decoded, bytes):
        data = decoded
    else:
        payload = part.get_payload()
        data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
    data = data[: MAX_HTML * 4]
    try:
        text = data.decode(_charset(part), errors="replace")
    except Exception:  # a codec that exists but fails on this input in another way
        text = data.decode("utf-8", errors="replace")
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """No directories, no control or shell characters, no leading dots, at most 255 chars."""
    name = unicodedata.normalize("NFC", clean_header(name, 1000))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:255] or fallback


def _payload_size(part: Message) -> int:
    """Decoded size without keeping the bytes; a compressed archive is never opened."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return len(data)
    payload = part.get_payload()
    return len(payload) if isinstance(payload, str) else 0


@dataclass
class Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    forwarded: list[Message] = field(default_factory=list)


def _content_type(part: Message) -> str:
    try:
        return clean_header(part.get_content_type(), 100).lower() or "application/octet-stream"
    except Exception:
        return "application/octet-stream"


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
    except Exception:
        return True
    return disposition == "attachment" or bool(filename)


def walk(part: Message, body: Body, depth: int = 0) -> None:
    """Collect text, HTML and attachment metadata; refuse absurd nesting rather than
    recursing without bound (a 100-deep multipart is an attack, not a letter)."""
    if depth > MAX_DEPTH:
        raise NormaliseError(f"The message nests MIME parts more than {MAX_DEPTH} levels deep.")
    body.parts += 1
    if body.parts > MAX_PARTS:
        raise NormaliseError(f"The message has more than {MAX_PARTS} MIME parts.")
    ctype = _content_type(part)
    if part.is_multipart():
        children = part.get_payload()
        if ctype == "message/rfc822":
            # A forwarded message: its own parts belong to it, not to this message's body;
            # we show its text as a quote and keep the message for the BCC log.
            for child in children if isinstance(children, list) else []:
                if isinstance(child, Message):
                    body.forwarded.append(child)
                    inner = Body(parts=body.parts)
                    walk(child, inner, depth + 1)
                    body.parts = inner.parts
                    body.attachments.extend(inner.attachments)
                    if inner.text:
                        body.text.append("\n\n---------- Forwarded message ----------\n" + inner.text[0])
            return
        if ctype == "multipart/alternative" and isinstance(children, list):
            # Parts are in increasing order of preference; keep one of each kind.
            alt = Body(parts=body.parts)
            for child in children:
                if isinstance(child, Message):
                    walk(child, alt, depth + 1)
            body.parts = alt.parts
            if alt.text:
                body.text.append(alt.text[0])
            if alt.html:
                body.html.append(alt.html[-1])
            body.attachments.extend(alt.attachments)
            body.forwarded.extend(alt.forwarded)
            return
        for child in children if isinstance(children, list) else []:
            if isinstance(child, Message):
                walk(child, body, depth + 1)
        return
    if not _is_attachment(part) and ctype in ("text/plain", ""):
        body.text.append(decode_text(part))
        return
    if not _is_attachment(part) and ctype == "text/html":
        body.html.append(decode_text(part))
        return
    if len(body.attachments) >= MAX_ATTACHMENTS:
        return
    try:
        filename = part.get_filename() or ""
    except Exception:
        filename = ""
    body.attachments.append(
        Attachment(
            filename=safe_filename(filename, fallback=f"part-{body.parts}"),
            content_type=ctype,
            size=_payload_size(part),
        )
    )


def parse(raw: bytes) -> EmailMessage:
    if not raw or not raw.strip():
        raise NormaliseError("The message is empty.")
    try:
        # The caching policy is policy.default underneath: its messages are EmailMessages.
        msg = cast(EmailMessage, BytesParser(policy=POLICY).parsebytes(raw))
    except RecursionError:
        raise NormaliseError("The message nests MIME parts too deeply to read.")
    except Exception as exc:
        raise NormaliseError(f"The message cannot be parsed as email ({type(exc).__name__}).")
    if not list(msg.raw_items()):
        raise NormaliseError("The data has no email headers.")
    return msg


def _date(msg: Message, received: dt.datetime) -> dt.datetime:
    value = header(msg, "Date")
    if not value:
        return received
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return received
    if when is None:
        return received
    if when.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
        when = when.replace(tzinfo=dt.UTC)
    # A date far in the future would sort above everything forever.
    if when > received + dt.timedelta(days=1) or when.year < 1980:
        return received
    return when


@dataclass
class Parsed:
    """Everything the connector reads from one message (also used by bcc.py and transport.py)."""

    message_id: str
    external_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    sender: tuple[str, str]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    envelope_to: list[str]
    sent_at: dt.datetime
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    forwarded: list[Message]
    truncated: bool
    auto_submitted: str
    auth_results: list[str]


def read(raw: bytes, *, received: dt.datetime, truncated_size: int | None = None) -> Parsed:
    return read_message(parse(raw), received=received, truncated_size=truncated_size)


def read_message(msg: Message, *, received: dt.datetime, truncated_size: int | None = None) -> Parsed:
    body = Body()
    if truncated_size is None:
        walk(msg, body)
    text = "\n\n".join(t for t in body.text if t.strip())[:MAX_TEXT]
    html = "\n".join(body.html)[:MAX_HTML]
    if truncated_size is not None:
        text = (
            f"[This message is {truncated_size / 1_000_000:.1f} MB, more than this channel fetches; "
            "only its header was stored. It is still in the mailbox.]"
        )
    senders = addresses(msg, "From")
    sender = senders[0] if senders else ("", "")
    subject = header(msg, "Subject")[:300]
    date_raw = header(msg, "Date")
    message_id = next(iter(message_ids(raw_header(msg, "Message-ID"))), "")
    external_id = email_external_id(
        message_id=message_id, from_=sender[1], date=date_raw, subject=subject, body=text or html
    )
    envelope = [a for _, a in addresses(msg, "Delivered-To", "X-Original-To", "Envelope-To")]
    return Parsed(
        message_id=message_id,
        external_id=external_id,
        in_reply_to=next(iter(message_ids(raw_header(msg, "In-Reply-To"))), ""),
        references=tuple(message_ids(raw_header(msg, "References", 20_000))[-MAX_REFERENCES:]),
        subject=subject,
        sender=sender,
        to=addresses(msg, "To"),
        cc=addresses(msg, "Cc"),
        reply_to=addresses(msg, "Reply-To"),
        envelope_to=envelope,
        sent_at=_date(msg, received),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        forwarded=body.forwarded,
        truncated=truncated_size is not None,
        auto_submitted=header(msg, "Auto-Submitted").lower()[:50],
        auth_results=all_headers(msg, "Authentication-Results"),
    )


def to_canonical(p: Parsed, *, raw_ref: int | None = None) -> CanonicalMessage:
    profile: dict[str, Any] = {}
    if p.reply_to and p.reply_to[0][1].lower() != p.sender[1].lower():
        profile["reply_to"] = p.reply_to[0][1]
    return CanonicalMessage(
        channel_kind=ChannelKind.EMAIL,
        external_id=p.external_id,
        author=Author(kind="email", value=p.sender[1], display_name=p.sender[0], profile=profile),
        text=p.text,
        html=p.html,
        subject=p.subject,
        sent_at=p.sent_at,
        in_reply_to=p.in_reply_to,
        references=p.references,
        attachments=p.attachments,
        raw_ref=raw_ref,
    )


def is_bcc_log(channel: Channel) -> bool:
    return (channel.settings or {}).get("mode") == "bcc_log"


def read_payload(payload: RawPayload) -> Parsed:
    size = str((payload.headers or {}).get(TRUNCATED_HEADER) or "")
    # isdecimal, not isdigit: int() rejects digits such as "²" that isdigit accepts.
    truncated = int(size) if size.isdecimal() else None
    return read(payload.body_bytes, received=payload.received_at, truncated_size=truncated)


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    parsed = read_payload(payload)
    if is_bcc_log(channel):
        from rapport.channels.connectors.email import bcc

        bcc.log_payload(channel, payload, parsed)
        return []
    return [to_canonical(parsed, raw_ref=payload.pk)]
