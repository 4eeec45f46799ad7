"""Helpers for tests of the inbox and its connectors (imported by test modules only)."""

import json
from pathlib import Path
from typing import Any

from django.test import Client

from rapport.accounts.models import Team
from rapport.channels.connectors.webhook import signing
from rapport.channels.models import Channel, ChannelKind

FIXTURES = Path(__file__).parent / "connectors" / "webhook" / "fixtures"
SECRET = "whsec_test_0123456789abcdef"  # noqa: S105 - test fixture


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def webhook_channel(team: Team | None = None, **credentials: str) -> Channel:
    channel = Channel(kind=ChannelKind.WEBHOOK, name="Shop webhook", team=team)
    channel.credentials = {"secret": SECRET, **credentials}
    channel.save()
    return channel


def post_signed(
    client: Client,
    channel: Channel,
    data: dict | bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    delivery: str = "",
    headers: dict[str, str] | None = None,
):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    extra = {**signing.sign(secret, body, timestamp), **(headers or {})}
    if delivery:
        extra["X-Rapport-Delivery"] = delivery
    return client.post(
        f"/hooks/webhook/{channel.pk}/",
        data=body,
        content_type="application/json",
        headers=extra,
    )


def message_event(
    ext_id: str, *, value: str = "jane@example.org", kind: str = "email", text: str = "Hello", **extra: Any
) -> dict[str, Any]:
    return {
        "event": "message",
        "id": f"evt-{ext_id}",
        "message": {
            "id": ext_id,
            "text": text,
            "author": {"kind": kind, "value": value, "name": "Jane Doe"},
            **extra,
        },
    }
