"""Test helpers for the social connectors (imported by test modules only)."""

import json
from pathlib import Path
from typing import Any

from django.test import Client

from rapport.channels.connectors.meta import http, signing
from rapport.channels.models import Channel

APP_SECRET = "meta-app-secret-for-tests"  # noqa: S105 - test fixture
VERIFY_TOKEN = "verify-me-0123"  # noqa: S105 - test fixture
CONNECTORS = Path(__file__).resolve().parent.parent


def load(connector: str, name: str) -> bytes:
    return (CONNECTORS / connector / "fixtures" / name).read_bytes()


def make_channel(kind: str, team: Any = None, settings: dict | None = None, **creds: Any) -> Channel:
    channel = Channel(kind=kind, name=f"Test {kind}", team=team, settings=settings or {})
    channel.credentials = creds
    channel.save()
    return channel


def post_meta(client: Client, channel: Channel, body: bytes, *, secret: str = APP_SECRET):
    return client.post(
        f"/hooks/{channel.kind}/{channel.pk}/",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signing.sign(secret, body)},
    )


class FakeAPI:
    """Stands in for the network at the one HTTP seam; records every request and answers
    from a queue of (status, json, headers), the last one repeating."""

    def __init__(self, *answers: tuple[int, Any] | tuple[int, Any, dict[str, str]]):
        self.answers = list(answers) or [(200, {})]
        self.calls: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float):
        self.calls.append({"method": method, "url": url, "body": body, "headers": headers})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        status, data, *rest = answer
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return http.Response(status, raw, {k.lower(): v for k, v in (rest[0] if rest else {}).items()})

    def json(self, i: int = -1) -> Any:
        return json.loads(self.calls[i]["body"])


def run(callbacks_fixture, fn, *args, **kwargs):
    with callbacks_fixture(execute=True):
        return fn(*args, **kwargs)
