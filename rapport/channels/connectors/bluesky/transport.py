"""Bluesky over XRPC. `com.atproto.server.createSession` (handle + app password) gives an
access JWT (kept in memory per channel, renewed when refused); replies are
`com.atproto.repo.createRecord` of an `app.bsky.feed.post` with `reply.root` and
`reply.parent` strong refs ({uri, cid}), read from the stored notification of the post
being answered (no extra request). Credentials: `identifier`, `app_password`; settings:
`service_url` (default https://bsky.social)."""

import datetime as dt
import json
from typing import Any

from rapport.channels.connectors.facebook.transport import last_inbound
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel

SERVICE = "https://bsky.social"
_sessions: dict[int, tuple[str, str]] = {}  # channel id → (access JWT, DID)


def service(channel: Channel) -> str:
    return str((channel.settings or {}).get("service_url") or SERVICE).rstrip("/")


def session(channel: Channel, *, fresh: bool = False) -> tuple[str, str]:
    if not fresh and channel.pk in _sessions:
        return _sessions[channel.pk]
    creds = channel.credentials
    ident, password = str(creds.get("identifier", "")), str(creds.get("app_password", ""))
    if not ident or not password:
        raise http.ApiError("This Bluesky channel needs an identifier and an app password.", permanent=True)
    resp = http.request(
        "POST",
        f"{service(channel)}/xrpc/com.atproto.server.createSession",
        json_body={"identifier": ident, "password": password},
    )
    if resp.status == 401:
        raise http.ApiError("Bluesky refused the app password (HTTP 401).", permanent=True, status=401)
    data = http.check(resp, "Bluesky") or {}
    _sessions[channel.pk] = (str(data.get("accessJwt", "")), str(data.get("did", "")))
    return _sessions[channel.pk]


def xrpc(channel: Channel, method: str, nsid: str, body: Any = None, query: str = "") -> Any:
    for attempt in (0, 1):
        jwt, _ = session(channel, fresh=attempt == 1)
        resp = http.request(
            method,
            f"{service(channel)}/xrpc/{nsid}{'?' + query if query else ''}",
            json_body=body,
            headers={"Authorization": f"Bearer {jwt}"},
        )
        if resp.status in (400, 401) and b"ExpiredToken" in resp.body and attempt == 0:
            continue  # the access JWT expired: one new session, then the real verdict
        return http.check(resp, "Bluesky")
    return None


def _refs(message: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(root, parent) strong refs of the post being answered, from its stored notification."""
    uri = message.external_id
    payload = message.raw_payload
    notes: list[Any] = []
    if payload is not None:
        try:
            found = json.loads(bytes(payload.body)).get("notifications")
        except (ValueError, AttributeError):
            found = None
        # A stored body is still foreign data: anything but a list has no notifications.
        if isinstance(found, list):
            notes = found
    for note in notes:
        if isinstance(note, dict) and note.get("uri") == uri and note.get("cid"):
            parent = {"uri": uri, "cid": str(note["cid"])}
            root = ((note.get("record") or {}).get("reply") or {}).get("root") or parent
            return {"uri": str(root.get("uri")), "cid": str(root.get("cid"))}, parent
    raise http.ApiError("Cannot reply: the post's cid is not in its stored notification.")


def send(channel: Channel, message: Any) -> str:
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no Bluesky post.")
    root, parent = _refs(last)
    _, did = session(channel)
    record = {
        "$type": "app.bsky.feed.post",
        "text": message.text[:300],
        "createdAt": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "reply": {"root": root, "parent": parent},
    }
    answer = xrpc(
        channel,
        "POST",
        "com.atproto.repo.createRecord",
        {"repo": did, "collection": "app.bsky.feed.post", "record": record},
    )
    return str((answer or {}).get("uri") or f"rapport-{message.pk}")[:300]
