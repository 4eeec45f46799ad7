"""POST /hooks/webhook/<channel_id>/ — verify, store, acknowledge; processing happens on the
task queue. Answers: 200 stored (or already stored), 401 bad signature or replay (nothing
stored), 404 no such webhook channel, 410 channel disabled, 413 too large, 503 the database
is unavailable (the sender must retry; nothing was acknowledged)."""

import logging

from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.base import SignatureError
from rapport.channels.connectors.webhook import signing
from rapport.channels.crypto import CredentialsError
from rapport.channels.models import Channel, ChannelKind, ChannelStatus

log = logging.getLogger(__name__)

KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Rapport-Timestamp",
    "X-Rapport-Delivery",
    "X-Rapport-Signature",
)
MAX_BODY = 1024 * 1024


def _answer(status: int, detail: str, **extra: object) -> JsonResponse:
    response = JsonResponse({"detail": detail, **extra}, status=status)
    if status == 503:
        response["Retry-After"] = "30"
    return response


@csrf_exempt  # authenticated by the HMAC signature instead
@require_POST
def receive(request: HttpRequest, channel_id: int) -> JsonResponse:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return _answer(413, "Body too large (1 MB at most).")
    body = request.body
    if len(body) > MAX_BODY:
        return _answer(413, "Body too large (1 MB at most).")
    try:
        channel = Channel.objects.filter(pk=channel_id, kind=ChannelKind.WEBHOOK).first()
        if channel is None:
            return _answer(404, "No such webhook channel.")
        if channel.status == ChannelStatus.DISABLED:
            return _answer(410, "This channel is disabled.")
        try:
            secret = str(channel.credentials.get("secret", ""))
        except CredentialsError:
            log.error("webhook channel %s: credentials cannot be decrypted", channel.pk)
            return _answer(503, "The channel is misconfigured; retry later.")
        try:
            signing.verify(
                secret,
                body,
                request.headers.get("X-Rapport-Timestamp", ""),
                request.headers.get("X-Rapport-Signature", ""),
            )
        except SignatureError as exc:
            log.warning("webhook channel %s: rejected delivery: %s", channel.pk, exc)
            return _answer(401, str(exc))
        headers = {h: request.headers[h][:500] for h in KEPT_HEADERS if h in request.headers}
        with transaction.atomic():
            payload, created = payload_store(
                channel=channel,
                body=body,
                headers=headers,
                delivery_id=request.headers.get("X-Rapport-Delivery", ""),
            )
            if created:
                enqueue_processing(payload)
    except DatabaseError:
        log.exception("webhook channel %s: database unavailable; asking the sender to retry", channel_id)
        return _answer(503, "Temporarily unavailable; retry later.")
    return _answer(
        200, "Stored." if created else "Already stored.", payload=payload.pk, duplicate=not created
    )
