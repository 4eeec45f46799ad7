"""Twilio webhooks. Every request is checked against `X-Twilio-Signature` (403, nothing
stored, when wrong), then the raw form body is stored with the event its URL names, then
answered; processing runs on the task queue.

- `POST /hooks/sms/<id>/`: inbound SMS → empty TwiML (`<Response/>`: no auto-answer here).
- `POST /hooks/sms/<id>/status/`: MessageStatus callbacks → the outbound message's delivery
  status (applied at once, idempotently, also on retries).
- `POST /hooks/phone/<id>/`: an incoming call → TwiML that forwards it to
  `settings.forward_to` (recording from answer) or else plays `settings.greeting` and records a
  voicemail.
- `POST /hooks/phone/<id>/status/`: call status callback → the call is logged in the caller's
  conversation (a message and its `Call` row, both written by the pipeline: see
  `inbound.after_ingest`).

Twilio signs the URL it called, so behind a proxy set `settings.public_url` on the channel
(e.g. `https://crm.example.com`) and it is used instead of the request's host."""

import logging
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.base import SignatureError
from rapport.channels.connectors.meta.views import answer, too_large
from rapport.channels.connectors.twilio import signing
from rapport.channels.crypto import CredentialsError
from rapport.channels.models import Channel, ChannelStatus
from rapport.conversations.models import Delivery, Direction, Message

log = logging.getLogger(__name__)

# An endpoint's answer once the callback is safely stored.
Reply = Callable[[HttpRequest, Channel], HttpResponse]

DELIVERED = getattr(Delivery, "DELIVERED", Delivery.SENT)
SMS_STATUS = {
    "sent": Delivery.SENT,
    "delivered": DELIVERED,
    "read": getattr(Delivery, "READ", DELIVERED),
    "failed": Delivery.FAILED,
    "undelivered": Delivery.FAILED,
}
RANK = {Delivery.QUEUED: 0, Delivery.SENT: 1, DELIVERED: 2, SMS_STATUS["read"]: 3, Delivery.FAILED: 4}


def twiml(body: str = "") -> HttpResponse:
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', content_type="text/xml"
    )


def signed_url(request: HttpRequest, channel: Channel) -> str:
    public = str((channel.settings or {}).get("public_url", "")).rstrip("/")
    if public:
        return public + request.get_full_path()
    return request.build_absolute_uri()


def _store(request: HttpRequest, channel_id: int, kind: str, event: str) -> Channel | HttpResponse:
    """The channel once the signed request is stored as `event` (and, the first time, queued
    for processing), or else the error response."""
    if request.method != "POST":
        return answer(405, "POST only.")
    if too_large(request):
        return answer(413, "Body too large (1 MB at most).")
    channel = Channel.objects.filter(pk=channel_id, kind=kind).first()
    if channel is None:
        return answer(404, "No such channel.")
    if channel.status == ChannelStatus.DISABLED:
        return answer(410, "This channel is disabled.")
    try:
        token = str(channel.credentials.get("auth_token", ""))
    except CredentialsError:
        return answer(503, "The channel is misconfigured; retry later.")
    body = request.body
    pairs = [(k, v) for k, values in request.POST.lists() for v in values]
    try:
        signing.verify(
            token, signed_url(request, channel), pairs, request.headers.get("X-Twilio-Signature", "")
        )
    except SignatureError as exc:
        log.warning("twilio channel %s: rejected %s: %s", channel.pk, event, exc)
        return answer(403, str(exc))
    sid = request.POST.get("MessageSid") or request.POST.get("CallSid") or ""
    status = request.POST.get("MessageStatus") or request.POST.get("CallStatus") or ""
    # A retry of the same callback is one row; two statuses of one message are two.
    delivery = f"{event}:{sid}:{status}" if sid else ""
    headers = {"X-Rapport-Event": event, "Content-Type": request.headers.get("Content-Type", "")[:200]}
    with transaction.atomic():
        payload, created = payload_store(channel=channel, body=body, headers=headers, delivery_id=delivery)
    if created:
        enqueue_processing(payload)
    return channel


def _webhook(kind: str, event: str) -> Callable[[Reply], Callable[[HttpRequest, int], HttpResponse]]:
    """A Twilio endpoint for channels of `kind`: `reply(request, channel)` answers only once
    the request is stored (`_store`). A database outage asks Twilio to retry rather than
    losing the callback."""

    def wrap(reply: Reply) -> Callable[[HttpRequest, int], HttpResponse]:
        @csrf_exempt
        def view(request: HttpRequest, channel_id: int) -> HttpResponse:
            try:
                stored = _store(request, channel_id, kind, event)
                return stored if isinstance(stored, HttpResponse) else reply(request, stored)
            except DatabaseError:
                log.exception("twilio channel %s: database unavailable; asking Twilio to retry", channel_id)
                return answer(503, "Temporarily unavailable; retry later.")

        return view

    return wrap


@_webhook("sms", "sms")
def sms(request: HttpRequest, channel: Channel) -> HttpResponse:
    return twiml()


def apply_sms_status(channel: Channel, sid: str, status: str, error: str) -> int:
    new = SMS_STATUS.get(status)
    if new is None or not sid:
        return 0
    lower = [s for s, r in RANK.items() if r < RANK[new]]
    fields = {"delivery_status": new}
    if new == Delivery.FAILED:
        fields["delivery_error"] = (f"Twilio error {error}" if error else f"SMS {status}")[:500]
    return (
        Message.objects.filter(channel=channel, direction=Direction.OUTBOUND, external_id=sid)
        .filter(Q(delivery_status__in=lower))
        .update(**fields)
    )


@_webhook("sms", "sms.status")
def sms_status(request: HttpRequest, channel: Channel) -> HttpResponse:
    apply_sms_status(
        channel,
        request.POST.get("MessageSid", ""),
        request.POST.get("MessageStatus", ""),
        request.POST.get("ErrorCode", ""),
    )
    return twiml()


@_webhook("phone", "call")
def call(request: HttpRequest, channel: Channel) -> HttpResponse:
    settings = channel.settings or {}
    forward = str(settings.get("forward_to", ""))
    if forward:
        from rapport.people.identities import IdentityError, normalise_phone

        try:
            number = normalise_phone(forward)
        except IdentityError:
            number = ""
        if number:
            return twiml(
                f'<Dial record="record-from-answer" timeout="25"><Number>{escape(number)}</Number></Dial>'
            )
    greeting = str(
        settings.get("greeting") or "Thank you for calling. Please leave a message after the tone."
    )[:500]
    return twiml(f'<Say>{escape(greeting)}</Say><Record maxLength={quoteattr("120")} playBeep="true"/>')


@_webhook("phone", "call.status")
def call_status(request: HttpRequest, channel: Channel) -> HttpResponse:
    return twiml()
