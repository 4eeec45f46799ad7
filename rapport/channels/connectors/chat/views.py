"""The web chat's public endpoints, called by the widget from other sites:

- `GET /chat/widget.js`, `GET /chat/widget.css`: the widget, served by Rapport (no CDN).
- `POST /chat/<key>/session`: a new visitor token.
- `POST /chat/<key>/messages`: a visitor message → stored as a raw payload (before the
  answer) → the normal ingest pipeline on the task queue.
- `GET /chat/<key>/messages?after=<id>&token=…`: the visitor's conversation since `after`
  (the widget polls it every 2 s).

Only the channel's configured site origins may call the API (CORS, and the Origin header is
checked server-side too, since CORS alone only stops browsers reading answers). No cookies
are used, so there is nothing for CSRF to ride on; the visitor token authenticates."""

import json
import logging
import re
from functools import cache
from pathlib import Path

from django.core.cache import cache as store
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.connectors.chat import tokens
from rapport.channels.models import Channel, ChannelKind, ChannelStatus

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_BODY = 16 * 1024
MAX_TEXT = 5000
SEND_PER_MINUTE = 20  # per visitor
IP_PER_MINUTE = 120  # every call of one address on one channel
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _asset_response(name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(_asset(name), content_type=content_type)
    response["Cache-Control"] = "public, max-age=300"
    # Sites that isolate themselves (COEP) may still load it.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    return _asset_response("widget.js", "text/javascript; charset=utf-8")


@require_GET
def widget_css(request: HttpRequest) -> HttpResponse:
    return _asset_response("widget.css", "text/css; charset=utf-8")


def allowed_origins(channel: Channel) -> set[str]:
    origins = (channel.settings or {}).get("origins") or []
    if not isinstance(origins, list):
        return set()
    return {o.strip().rstrip("/").lower() for o in origins if isinstance(o, str) and o.strip()}


def _json(status: int, data: dict, origin: str = "") -> JsonResponse:
    response = JsonResponse(data, status=status)
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    if status == 503:
        response["Retry-After"] = "10"
    return response


def _too_many(key: str, limit: int) -> bool:
    """A fixed one-minute window in the cache: good enough to stop a flood, and shared by
    all workers when the cache is Redis (per process with the local-memory cache)."""
    store.add(key, 0, 60)
    try:
        return store.incr(key) > limit
    except ValueError:  # expired between add and incr
        store.set(key, 1, 60)
        return False


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")[:64]


def _channel(key: str) -> Channel | None:
    return Channel.objects.filter(kind=ChannelKind.CHAT, settings__public_key=key).first()


def _gate(request: HttpRequest, key: str) -> tuple[Channel, str] | JsonResponse:
    """The channel and the caller's origin, or the refusal to send back."""
    channel = _channel(key)
    if channel is None:
        return _json(404, {"detail": "No such chat."})
    origin = (request.headers.get("Origin") or "").strip().rstrip("/").lower()
    if not origin or origin not in allowed_origins(channel):
        return _json(403, {"detail": "This site may not use this chat."})
    if channel.status == ChannelStatus.DISABLED:
        return _json(410, {"detail": "This chat is closed."}, origin)
    if _too_many(f"chat:ip:{channel.pk}:{_client_ip(request)}", IP_PER_MINUTE):
        return _json(429, {"detail": "Too many requests; wait a minute."}, origin)
    return channel, origin


def _preflight(request: HttpRequest, key: str) -> HttpResponse:
    channel = _channel(key)
    origin = (request.headers.get("Origin") or "").strip().rstrip("/").lower()
    if channel is None or origin not in allowed_origins(channel):
        return HttpResponse(status=403)
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "GET, POST"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    response["Vary"] = "Origin"
    return response


@csrf_exempt  # no cookies: the visitor token authenticates
def session(request: HttpRequest, key: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request, key)
    if request.method != "POST":
        return _json(405, {"detail": "POST only."})
    gate = _gate(request, key)
    if isinstance(gate, JsonResponse):
        return gate
    channel, origin = gate
    visitor, token = tokens.issue(channel)
    return _json(201, {"token": token}, origin)


@csrf_exempt
def messages(request: HttpRequest, key: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request, key)
    if request.method == "POST":
        return _send(request, key)
    if request.method == "GET":
        return _poll(request, key)
    return _json(405, {"detail": "GET or POST."})


def _send(request: HttpRequest, key: str) -> JsonResponse:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return _json(413, {"detail": "Message too large."}, _maybe_origin(request, key))
    body = request.body
    if len(body) > MAX_BODY:
        return _json(413, {"detail": "Message too large."}, _maybe_origin(request, key))
    try:
        gate = _gate(request, key)
        if isinstance(gate, JsonResponse):
            return gate
        channel, origin = gate
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json(400, {"detail": "Send a JSON object."}, origin)
        if not isinstance(data, dict):
            return _json(400, {"detail": "Send a JSON object."}, origin)
        visitor = tokens.visitor_of(channel, str(data.get("token") or ""))
        if visitor is None:
            return _json(401, {"detail": "Unknown or expired visitor token; start a new chat."}, origin)
        if _too_many(f"chat:visitor:{channel.pk}:{visitor}", SEND_PER_MINUTE):
            return _json(429, {"detail": "You are sending messages too fast; wait a minute."}, origin)
        client_id = str(data.get("client_id") or "")
        text = data.get("text")
        errors: dict[str, list[str]] = {}
        if not CLIENT_ID.match(client_id):
            errors["client_id"] = ["1 to 64 letters, digits, - or _."]
        if not isinstance(text, str) or not text.strip():
            errors["text"] = ["Write something first."]
        elif len(text) > MAX_TEXT:
            errors["text"] = [f"At most {MAX_TEXT} characters."]
        for field, limit in (("email", 320), ("name", 200), ("page", 2000)):
            if not isinstance(data.get(field) or "", str) or len(data.get(field) or "") > limit:
                errors[field] = [f"A string of at most {limit} characters."]
        if errors:
            return _json(400, {"detail": "Check the message.", "errors": errors}, origin)
        # What is stored is what the pipeline trusts: the visitor comes from the token.
        stored = {
            "event": "message",
            "visitor": visitor,
            "client_id": client_id,
            "text": text,
            "email": data.get("email") or "",
            "name": data.get("name") or "",
            "page": data.get("page") or "",
        }
        with transaction.atomic():
            payload, created = payload_store(
                channel=channel,
                body=json.dumps(stored, ensure_ascii=False).encode(),
                headers={"Origin": origin[:200], "User-Agent": request.headers.get("User-Agent", "")[:300]},
                delivery_id=f"chat:{visitor}:{client_id}",
            )
            if created:
                enqueue_processing(payload)
    except DatabaseError:
        log.exception("chat %s: database unavailable", key)
        return _json(
            503, {"detail": "Temporarily unavailable; the widget will retry."}, _maybe_origin(request, key)
        )
    return _json(202, {"stored": True, "duplicate": not created, "client_id": client_id}, origin)


def _maybe_origin(request: HttpRequest, key: str) -> str:
    """The Origin to echo on an early refusal, only if the channel allows it."""
    try:
        channel = _channel(key)
    except DatabaseError:
        return ""
    origin = (request.headers.get("Origin") or "").strip().rstrip("/").lower()
    return origin if channel is not None and origin in allowed_origins(channel) else ""


def _poll(request: HttpRequest, key: str) -> JsonResponse:
    from rapport.conversations.models import Delivery, Direction, Message

    gate = _gate(request, key)
    if isinstance(gate, JsonResponse):
        return gate
    channel, origin = gate
    visitor = tokens.visitor_of(channel, request.GET.get("token", ""))
    if visitor is None:
        return _json(401, {"detail": "Unknown or expired visitor token; start a new chat."}, origin)
    try:
        after = max(0, min(int(request.GET.get("after") or 0), 2**62))
    except ValueError:
        return _json(400, {"detail": "“after” must be a message id."}, origin)
    # The visitor's conversations are those holding their chat thread; following the
    # messages (not a stored conversation id) keeps working after a merge moves them.
    conversation_ids = set(
        Message.objects.filter(channel=channel, thread_id=f"chat:{visitor}").values_list(
            "conversation_id", flat=True
        )
    )
    rows = (
        Message.objects.filter(conversation_id__in=conversation_ids, channel=channel, pk__gt=after)
        .filter(
            (Q(direction=Direction.INBOUND, thread_id=f"chat:{visitor}"))
            | Q(direction=Direction.OUTBOUND, delivery_status=Delivery.SENT)
        )
        .select_related("author_user")
        .order_by("id")[:100]
        if conversation_ids
        else []
    )
    items = []
    for m in rows:
        mine = m.direction == Direction.INBOUND
        items.append(
            {
                "id": m.pk,
                "from": "visitor" if mine else "agent",
                "client_id": m.external_id.partition(":")[2] if mine else "",
                "author": ""
                if mine
                else (m.author_user.first_name or "Support")
                if m.author_user
                else "Support",
                "text": m.text,
                "at": m.received_at.isoformat(),
            }
        )
    return _json(200, {"items": items, "last_id": items[-1]["id"] if items else after}, origin)
