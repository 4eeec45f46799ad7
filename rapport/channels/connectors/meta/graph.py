"""Graph API calls and payload helpers shared by Facebook, Instagram and WhatsApp."""

import datetime as dt
import json
from typing import Any

from rapport.channels.base import NormaliseError
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel, RawPayload

GRAPH = "https://graph.facebook.com"
VERSION = "v21.0"


def url(channel: Channel, path: str) -> str:
    base = str((channel.settings or {}).get("graph_url") or GRAPH).rstrip("/")
    version = str((channel.settings or {}).get("graph_version") or VERSION)
    return f"{base}/{version}/{path.lstrip('/')}"


def post(channel: Channel, path: str, body: dict[str, Any], token: str, platform: str) -> Any:
    if not token:
        raise http.ApiError(f"This {platform} channel has no access token.", permanent=True)
    resp = http.request(
        "POST", url(channel, path), json_body=body, headers={"Authorization": f"Bearer {token}"}
    )
    if resp.status == 400:
        # Graph says "token expired/revoked" with 400 + OAuthException code 190.
        err = (resp.json() or {}).get("error") if isinstance(resp.json(), dict) else None
        if isinstance(err, dict) and err.get("code") == 190:
            raise http.ApiError(
                f"{platform} access token is invalid or revoked: {str(err.get('message', ''))[:200]}",
                permanent=True,
                status=400,
            )
    return http.check(resp, platform)


def parse(payload: RawPayload, expected_object: str) -> dict[str, Any]:
    try:
        data = json.loads(payload.body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    if not isinstance(data, dict):
        raise NormaliseError("The body must be a JSON object.")
    if data.get("object") != expected_object:
        raise NormaliseError(f"Expected object {expected_object!r}, got {str(data.get('object'))[:40]!r}.")
    entries = data.get("entry")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise NormaliseError("“entry” must be a list of objects.")
    return data


def obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def text(data: Any, key: str, limit: int = 100_000) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def millis(value: Any) -> dt.datetime | None:
    """Messenger timestamps are milliseconds, feed/WhatsApp ones seconds."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number > 10**11:
        number //= 1000
    try:
        return dt.datetime.fromtimestamp(number, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def messaging_events(data: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, messaging item) pairs of a Messenger-format payload (Page and Instagram)."""
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for entry in data["entry"]:
        items = entry.get("messaging") or []
        if not isinstance(items, list):
            raise NormaliseError("“messaging” must be a list.")
        out.extend((entry, item) for item in items if isinstance(item, dict))
    return out


def change_events(data: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for entry in data["entry"]:
        items = entry.get("changes") or []
        if not isinstance(items, list):
            raise NormaliseError("“changes” must be a list.")
        out.extend((entry, item) for item in items if isinstance(item, dict))
    return out


def messaging_kind(item: dict[str, Any]) -> str:
    for key in ("message", "postback", "delivery", "read", "reaction", "referral", "optin", "message_edit"):
        if key in item:
            return key
    return "?" + ",".join(sorted(k for k in item if k not in ("sender", "recipient", "timestamp")))[:60]
