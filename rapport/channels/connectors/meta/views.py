"""One webhook view for every Meta product (Page/Messenger, Instagram, WhatsApp): GET is the
verify-token handshake (answered without storing), POST is verified on the raw body, stored,
acknowledged and processed on the task queue. Answers: 200 stored, 403 bad token or
signature (nothing stored), 404 no such channel, 410 disabled, 413 too large, 503 database
unavailable (Meta retries)."""

import logging
from collections.abc import Callable

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.base import SignatureError
from rapport.channels.connectors.meta import signing
from rapport.channels.crypto import CredentialsError
from rapport.channels.models import Channel, ChannelStatus, RawPayload

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature-256")


def answer(status: int, detail: str, **extra: object) -> JsonResponse:
    response = JsonResponse({"detail": detail, **extra}, status=status)
    if status == 503:
        response["Retry-After"] = "30"
    return response


def too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    return length > MAX_BODY or len(request.body) > MAX_BODY


def make_view(kind: str, after_store: Callable[[Channel, RawPayload], None] | None = None):
    """`after_store` runs after the payload is committed, on every delivery (first or
    repeated), for effects that are idempotent and must not wait for the queue (delivery
    receipts)."""

    @csrf_exempt
    def receive(request: HttpRequest, channel_id: int) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return answer(405, "GET (handshake) or POST (deliveries) only.")
        if request.method == "POST" and too_large(request):
            return answer(413, "Body too large (1 MB at most).")
        try:
            channel = Channel.objects.filter(pk=channel_id, kind=kind).first()
            if channel is None:
                return answer(404, "No such channel.")
            if channel.status == ChannelStatus.DISABLED:
                return answer(410, "This channel is disabled.")
            try:
                creds = channel.credentials
            except CredentialsError:
                log.error("%s channel %s: credentials cannot be decrypted", kind, channel.pk)
                return answer(503, "The channel is misconfigured; retry later.")
            if request.method == "GET":
                try:
                    challenge = signing.handshake(request.GET.dict(), str(creds.get("verify_token", "")))
                except SignatureError as exc:
                    return answer(403, str(exc))
                return HttpResponse(challenge, content_type="text/plain")
            body = request.body
            try:
                signing.verify(
                    str(creds.get("app_secret", "")), body, request.headers.get("X-Hub-Signature-256", "")
                )
            except SignatureError as exc:
                log.warning("%s channel %s: rejected delivery: %s", kind, channel.pk, exc)
                return answer(403, str(exc))
            headers = {h: request.headers[h][:500] for h in KEPT_HEADERS if h in request.headers}
            with transaction.atomic():
                # Meta sends no delivery id; a retry repeats the body byte for byte, so the
                # body's digest (payload_store's default) makes a retry one row.
                payload, created = payload_store(channel=channel, body=body, headers=headers)
                if created:
                    enqueue_processing(payload)
            if after_store is not None:
                after_store(channel, payload)
        except DatabaseError:
            log.exception("%s channel %s: database unavailable; asking Meta to retry", kind, channel_id)
            return answer(503, "Temporarily unavailable; retry later.")
        return answer(
            200, "Stored." if created else "Already stored.", payload=payload.pk, duplicate=not created
        )

    return receive
