"""Test helpers: a fake network at the one HTTP seam, and fixture loading."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapport.listening import http

SOURCES = Path(__file__).parent / "sources"


def fixture_bytes(kind: str, name: str) -> bytes:
    return (SOURCES / kind / "fixtures" / name).read_bytes()


def fixture_json(kind: str, name: str) -> Any:
    return json.loads(fixture_bytes(kind, name))


@dataclass
class _Answer(http.Response):
    lines: Any = None


class FakeWeb:
    """Answers by method and URL prefix; each has a queue of responses (the last one
    repeats). Every request is recorded with its headers, so tests can check cursors were
    sent; POST bodies are kept in `posted`, closed streams in `closed`. Install it with
    `install` (GET, POST and stream seams at once)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, list[_Answer]]] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.posted: list[tuple[str, Any]] = []
        self.closed: list[str] = []

    def add(
        self,
        prefix: str,
        *,
        status: int = 200,
        body: bytes | str | Any = b"",
        headers: dict[str, str] | None = None,
        method: str = "GET",
        lines: list[bytes | Exception] | None = None,
    ) -> FakeWeb:
        """Queue an answer. `lines` is what a stream sends (an exception in it is raised at
        that point: a stall or a broken connection)."""
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        response = _Answer(
            status=status, body=body, headers={k.lower(): v for k, v in (headers or {}).items()}
        )
        response.lines = lines
        key = f"{method} {prefix}"
        for p, queue in self.routes:
            if p == key:
                queue.append(response)
                return self
        self.routes.append((key, [response]))
        return self

    def _answer(self, method: str, url: str) -> _Answer | None:
        for key, queue in self.routes:
            if f"{method} {url}".startswith(key):
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return None

    def __call__(self, url: str, headers: dict[str, str], timeout: float, limit: int) -> http.Response:
        self.calls.append((url, dict(headers)))
        response = self._answer("GET", url)
        if response is None:
            return http.Response(404, b"not found", {}, url)
        if len(response.body) > limit:
            raise http.TooLarge(limit)
        return http.Response(response.status, response.body, dict(response.headers), url)

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float, limit: int
    ) -> http.Response:
        self.calls.append((url, dict(headers)))
        self.posted.append((url, json.loads(body)))
        response = self._answer("POST", url)
        if response is None:
            return http.Response(404, b"not found", {}, url)
        return http.Response(response.status, response.body, dict(response.headers), url)

    def stream(self, url: str, headers: dict[str, str], read_timeout: float) -> http.Stream:
        self.calls.append((url, dict(headers)))
        response = self._answer("GET", url)
        if response is None:
            return http.Stream(404, {}, b"not found")
        if isinstance(response.lines, Exception):
            raise response.lines
        if response.status != 200:
            return http.Stream(response.status, dict(response.headers), response.body)
        sent = list(response.lines if response.lines is not None else response.body.splitlines(keepends=True))

        def lines() -> Iterator[bytes]:
            for line in sent:
                if isinstance(line, Exception):
                    raise line
                yield line

        return http.Stream(200, dict(response.headers), b"", lines(), lambda: self.closed.append(url))

    def urls(self) -> list[str]:
        return [u for u, _ in self.calls]


def install(fake: FakeWeb | None) -> None:
    """Put `fake` on all three seams (None restores the network)."""
    http.set_transport(fake)
    http.set_post_transport(fake.post if fake else None)
    http.set_stream_transport(fake.stream if fake else None)
