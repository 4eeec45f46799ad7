"""/hooks/x/<channel_id>/: GET answers the CRC challenge (nothing stored); POST is verified on
the raw body (`x-twitter-webhooks-signature`), stored, acknowledged (X wants < 3 s) and
processed on the task queue. 403 bad signature (nothing stored), 404, 410, 413, 503."""

import hashlib
import json
import logging

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.base import SignatureError
from rapport.channels.connectors.meta.views import answer, too_large
from rapport.channels.connectors.x import signing
from rapport.channels.crypto import CredentialsError
from rapport.channels.models import Channel, ChannelKind, ChannelStatus

log = logging.getLogger(__name__)
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Twitter-Webhooks-Signature")


def delivery_id(body: bytes) -> str:
    """`for_user_id` + event kind + event ids: X's retries (and the same event delivered to
    two webhooks of one app) are one row; unreadable bodies fall back to the body digest."""
    try:
        data = json.loads(body)
        for key, events in data.items():
            if key.endswith("_events") and isinstance(events, list) and events:
                ids = ",".join(
                    str(e.get("id_str") or e.get("id") or "") for e in events if isinstance(e, dict)
                )
                if ids.strip(","):
                    ident = f"x:{data.get('for_user_id', '')}:{key}:{ids}"
                    return ident if len(ident) <= 200 else "x:" + hashlib.sha256(ident.encode()).hexdigest()
    except (ValueError, AttributeError, TypeError):
        pass
    return ""


@csrf_exempt
def receive(request: HttpRequest, channel_id: int) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return answer(405, "GET (CRC) or POST (events) only.")
    if request.method == "POST" and too_large(request):
        return answer(413, "Body too large (1 MB at most).")
    try:
        channel = Channel.objects.filter(pk=channel_id, kind=ChannelKind.X).first()
        if channel is None:
            return answer(404, "No such X channel.")
        if channel.status == ChannelStatus.DISABLED:
            return answer(410, "This channel is disabled.")
        try:
            secret = str(channel.credentials.get("consumer_secret", ""))
        except CredentialsError:
            return answer(503, "The channel is misconfigured; retry later.")
        if request.method == "GET":
            try:
                return JsonResponse(signing.crc_response(secret, request.GET.get("crc_token", "")))
            except SignatureError as exc:
                return answer(403, str(exc))
        body = request.body
        try:
            signing.verify(secret, body, request.headers.get("X-Twitter-Webhooks-Signature", ""))
        except SignatureError as exc:
            log.warning("x channel %s: rejected delivery: %s", channel.pk, exc)
            return answer(403, str(exc))
        headers = {h: request.headers[h][:500] for h in KEPT_HEADERS if h in request.headers}
        with transaction.atomic():
            payload, created = payload_store(
                channel=channel, body=body, headers=headers, delivery_id=delivery_id(body)
            )
            if created:
                enqueue_processing(payload)
    except DatabaseError:
        log.exception("x channel %s: database unavailable; asking X to retry", channel_id)
        return answer(503, "Temporarily unavailable; retry later.")
    return answer(200, "Stored." if created else "Already stored.", payload=payload.pk, duplicate=not created)
