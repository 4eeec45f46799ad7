"""Twilio form posts → canonical messages. The webhook view stores the raw form body with
the event it came in on (`X-Rapport-Event`, taken from the URL, not the body):

- `sms`: an inbound SMS/MMS (From, To, Body, MessageSid, NumMedia + MediaUrlN/MediaContentTypeN).
- `sms.status`: a delivery status callback (MessageStatus) → no message; `receipt()` reads it.
- `call`: an incoming call being answered → no message (the TwiML answer is the effect).
- `call.status`: a call status callback → when the call is over (completed, busy, no-answer,
  failed, canceled) one message summarising it, whose external id is the CallSid; the
  pipeline's `after_ingest` hook below adds the `Call` row (direction, number, duration,
  outcome) in the same transaction, whichever path (task, sweep, replay) processed it.

Phone numbers are E.164 already; the pipeline normalises them again for identity lookup."""

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.models import Channel, ChannelKind, RawPayload
from rapport.core.rows import insert_rows

FINAL_CALL = {"completed", "busy", "no-answer", "failed", "canceled"}


def params(payload: RawPayload) -> dict[str, str]:
    try:
        pairs = parse_qsl(payload.body_bytes.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not a UTF-8 form ({exc.__class__.__name__}).")
    return {k: v.replace("\x00", "") for k, v in pairs}


def _sms(channel: Channel, p: dict[str, str]) -> list[CanonicalMessage]:
    sid, sender = p.get("MessageSid", ""), p.get("From", "")
    if not sid or not sender:
        raise NormaliseError("An SMS webhook needs MessageSid and From.")
    try:
        count = min(int(p.get("NumMedia") or 0), 10)
    except ValueError:
        count = 0
    atts = tuple(
        Attachment(
            filename=f"media-{i}",
            content_type=p.get(f"MediaContentType{i}", "application/octet-stream")[:100],
            url=p.get(f"MediaUrl{i}", "")[:2000],
        )
        for i in range(count)
        if p.get(f"MediaUrl{i}")
    )
    return [
        CanonicalMessage(
            channel_kind=ChannelKind.SMS,
            external_id=sid,
            author=Author(
                kind="phone",
                value=sender,
                profile={k: p[k] for k in ("FromCity", "FromCountry") if p.get(k)},
            ),
            text=p.get("Body", "")[:10_000] or ("[MMS]" if atts else ""),
            thread_id=f"sms:{p.get('To', '')}:{sender}",
            attachments=atts,
        )
    ]


def call_outcome(p: dict[str, str]) -> tuple[str, str, str, int]:
    """(direction, customer number, outcome, duration in seconds) of a finished call."""
    status = p.get("CallStatus", "")
    inbound = p.get("Direction", "inbound") == "inbound"
    number = p.get("From", "") if inbound else p.get("To", "")
    try:
        duration = max(0, min(int(p.get("CallDuration") or 0), 24 * 3600))
    except ValueError:
        duration = 0
    if status == "completed" and duration > 0:
        outcome = (
            "voicemail" if p.get("RecordingUrl") and inbound and not p.get("DialCallStatus") else "answered"
        )
    elif status == "busy":
        outcome = "busy"
    else:
        outcome = "no_answer"
    return ("inbound" if inbound else "outbound"), number, outcome, duration


def _call_status(channel: Channel, p: dict[str, str]) -> list[CanonicalMessage]:
    if p.get("CallStatus") not in FINAL_CALL:
        return []
    sid = p.get("CallSid", "")
    if not sid:
        raise NormaliseError("A call status callback needs CallSid.")
    direction, number, outcome, duration = call_outcome(p)
    if not number:
        raise NormaliseError("A call status callback needs From/To.")
    minutes, seconds = divmod(duration, 60)
    label = {"answered": "answered", "voicemail": "voicemail left", "busy": "busy", "no_answer": "no answer"}[
        outcome
    ]
    text = f"{direction.capitalize()} call: {label}, {minutes} min {seconds:02d} s"
    atts: tuple[Attachment, ...] = ()
    if p.get("RecordingUrl"):
        atts = (Attachment(filename=f"{sid}.wav", content_type="audio/wav", url=p["RecordingUrl"][:2000]),)
    return [
        CanonicalMessage(
            channel_kind=ChannelKind.PHONE,
            external_id=sid,
            author=Author(kind="phone", value=number),
            text=text,
            attachments=atts,
        )
    ]


EVENTS: dict[str, Callable[[Channel, dict[str, str]], list[CanonicalMessage]]] = {
    "sms": _sms,
    "sms.status": lambda channel, p: [],
    "call": lambda channel, p: [],
    "call.status": _call_status,
}


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    event = (payload.headers or {}).get("X-Rapport-Event", "")
    handler = EVENTS.get(event)
    if handler is None:
        raise UnknownEvent(f"Unknown Twilio event {event[:40]!r}.")
    out = handler(channel, params(payload))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]


def after_ingest_wanted(payload: RawPayload) -> bool:
    """Whether after_ingest acts on this payload (the pipeline reads the messages it needs
    only for those): finished calls."""
    return (payload.headers or {}).get("X-Rapport-Event") == "call.status"


def after_ingest(channel: Channel, payload: RawPayload, messages: list[Any]) -> None:
    """Attach the `Call` row to a finished call's message. Runs inside the pipeline's
    transaction, for messages stored now or by an earlier run of the same payload: one row
    per message (Call.message is one-to-one), so processing again adds nothing."""
    after_ingest_many(channel, [(payload, messages)])


def after_ingest_many(channel: Channel, items: list[tuple[RawPayload, list[Any]]]) -> None:
    """after_ingest for a batch's payloads at once: one INSERT for all their calls (the
    pipeline runs this under its write lock), idempotent through the one-to-one's unique
    index (ON CONFLICT DO NOTHING)."""
    from rapport.conversations.ingest import system_user
    from rapport.conversations.models import Call

    rows = []
    bot = None
    for payload, messages in items:
        if not after_ingest_wanted(payload):
            continue
        p = params(payload)
        sid = p.get("CallSid", "")
        if not sid:
            continue
        direction, number, outcome, duration = call_outcome(p)
        for message in messages:
            if message.external_id != sid:
                continue
            bot = bot or system_user()
            rows.append(
                Call(
                    message=message,
                    conversation_id=message.conversation_id,
                    direction=direction,
                    number=number[:40],
                    duration_s=duration,
                    outcome=outcome,
                    logged_by=bot,
                )
            )
    # One prepared INSERT … ON CONFLICT DO NOTHING (bulk_create compiled every row's values).
    insert_rows(Call, rows, ignore_conflicts=True)
