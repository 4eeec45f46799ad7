"""Test helpers: a fake network at the one HTTP seam, and fixture loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rapport.listening import http

SOURCES = Path(__file__).parent / "sources"


def fixture_bytes(kind: str, name: str) -> bytes:
    return (SOURCES / kind / "fixtures" / name).read_bytes()


def fixture_json(kind: str, name: str) -> Any:
    return json.loads(fixture_bytes(kind, name))


class FakeWeb:
    """Answers by URL prefix; each prefix has a queue of responses (the last one repeats).
    Every request is recorded with its headers, so tests can check cursors were sent."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, list[http.Response]]] = []
        self.calls: list[tuple[str, dict[str, str]]] = []

    def add(
        self,
        prefix: str,
        *,
        status: int = 200,
        body: bytes | str | Any = b"",
        headers: dict[str, str] | None = None,
    ) -> FakeWeb:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        response = http.Response(
            status=status, body=body, headers={k.lower(): v for k, v in (headers or {}).items()}
        )
        for p, queue in self.routes:
            if p == prefix:
                queue.append(response)
                return self
        self.routes.append((prefix, [response]))
        return self

    def __call__(self, url: str, headers: dict[str, str], timeout: float, limit: int) -> http.Response:
        self.calls.append((url, dict(headers)))
        for prefix, queue in self.routes:
            if url.startswith(prefix):
                response = queue.pop(0) if len(queue) > 1 else queue[0]
                if len(response.body) > limit:
                    raise http.TooLarge(limit)
                return http.Response(response.status, response.body, dict(response.headers), url)
        return http.Response(404, b"not found", {}, url)

    def urls(self) -> list[str]:
        return [u for u, _ in self.calls]
