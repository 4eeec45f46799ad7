"""The one place listening talks HTTP: every poller calls `fetch` (or, for the X rules and
filtered stream, `post` and `open_stream`), and tests replace the network with a fake
(`set_transport`, `set_post_transport`, `set_stream_transport`) at this seam only.

Safe by default: http(s) only; the network goes through `rapport.channels.net.safe_get`,
which resolves the host once, checks that address (no loopback, private, link-local,
multicast or reserved ranges; IPv4-mapped IPv6 unwrapped) unless
`settings.RAPPORT_LISTENING_ALLOW_PRIVATE` is set (tests and local development), and pins
the connection to it; redirects are followed by hand, at most three, each hop resolved,
checked and pinned again; a timeout and a size cap (`RAPPORT_LISTENING_MAX_BYTES`, 10 MB by
default) on every response."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from rapport.channels import net
from rapport.channels.base import TransportError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 15.0
MAX_REDIRECTS = 3
USER_AGENT = "Rapport-Listening/1.0 (+https://github.com/rapport-crm)"


class FetchError(Exception):
    """A request that did not give a usable answer. `permanent` means retrying will not help
    (a refused address, a 4xx other than 429, an oversized body)."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status


class TooLarge(FetchError):
    def __init__(self, limit: int):
        super().__init__(f"The response is larger than {limit // (1024 * 1024)} MB", permanent=True)


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    url: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


Transport = Callable[[str, dict[str, str], float, int], Response]


def max_bytes() -> int:
    return int(getattr(settings, "RAPPORT_LISTENING_MAX_BYTES", DEFAULT_MAX_BYTES))


def check_url(url: str) -> None:
    """Only http(s) with a host; the address itself is checked where the connection is made."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("Only http(s) URLs can be polled.", permanent=True)


def _pinned_transport(url: str, headers: dict[str, str], timeout: float, limit: int) -> Response:
    # channels.net resolves once, checks that address and connects to it, so a DNS answer
    # that changes between the check and the connection (rebinding) cannot reach inside.
    allow_private = bool(getattr(settings, "RAPPORT_LISTENING_ALLOW_PRIVATE", False))
    try:
        status, resp_headers, body = net.safe_get(
            url, headers, timeout=timeout, max_bytes=limit, allow_private=allow_private
        )
    except net.ResponseTooLarge:
        raise TooLarge(limit)
    except TransportError as exc:
        raise FetchError(str(exc), permanent=exc.permanent)
    return Response(status=status, body=body, headers=resp_headers, url=url)


_transport: Transport = _pinned_transport


def set_transport(transport: Transport | None) -> Transport:
    """Replace the network (tests). Returns the previous transport; None restores the network."""
    global _transport
    previous = _transport
    _transport = transport or _pinned_transport
    return previous


def fetch(url: str, *, headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> Response:
    """GET `url`; returns any status (callers decide what 304, 429 or 5xx mean) after at most
    three checked redirects. Raises FetchError for refused hosts, network errors and bodies
    over the size cap."""
    limit = max_bytes()
    hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        resp = _transport(url, hdrs, timeout, limit)
        if len(resp.body) > limit:
            raise TooLarge(limit)
        if resp.status in (301, 302, 303, 307, 308) and resp.header("location"):
            url = urljoin(url, resp.header("location"))
            continue
        return resp
    raise FetchError("Too many redirects.", permanent=True)


# --- JSON POST and long-lived streams (X filtered stream and its rules) ----------------------

PostTransport = Callable[[str, bytes, dict[str, str], float, int], Response]
MAX_LINE = 1024 * 1024  # one streamed JSON object; X's are a few KB


def _allow_private() -> bool:
    return bool(getattr(settings, "RAPPORT_LISTENING_ALLOW_PRIVATE", False))


def _pinned(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    check_url(url)
    try:
        return net.pinned_connection(url, timeout, allow_private=_allow_private())
    except TransportError as exc:
        raise FetchError(str(exc), permanent=exc.permanent) from None


def _pinned_post(url: str, body: bytes, headers: dict[str, str], timeout: float, limit: int) -> Response:
    conn, path = _pinned(url, timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(limit)
        return Response(resp.status, data, {k.lower(): v for k, v in resp.getheaders()}, url)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"Could not reach {conn.host}: {exc}") from None
    finally:
        conn.close()


_post_transport: PostTransport = _pinned_post


def set_post_transport(transport: PostTransport | None) -> PostTransport:
    global _post_transport
    previous = _post_transport
    _post_transport = transport or _pinned_post
    return previous


def post_json(url: str, payload: object, *, headers: dict[str, str] | None = None) -> Response:
    """POST a JSON body; any status comes back (no redirects: an API does not send them)."""
    hdrs = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        **(headers or {}),
    }
    check_url(url)
    return _post_transport(url, json.dumps(payload).encode(), hdrs, TIMEOUT, max_bytes())


class StreamStalled(FetchError):
    """Nothing, not even a keep-alive, arrived within the read timeout."""


@dataclass
class Stream:
    """An open streaming response. `lines()` yields each line as it arrives (keep-alive
    blank lines included) until the server closes; a silence longer than the read timeout
    raises StreamStalled, a line over MAX_LINE is cut off the stream (FetchError)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""  # the error document when status != 200
    _lines: Iterator[bytes] | None = None
    _close: Callable[[], None] | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def lines(self) -> Iterator[bytes]:
        return self._lines or iter(())

    def close(self) -> None:
        if self._close:
            self._close()


StreamTransport = Callable[[str, dict[str, str], float], Stream]


def _pinned_stream(url: str, headers: dict[str, str], read_timeout: float) -> Stream:
    conn, path = _pinned(url, read_timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise FetchError(f"Could not reach {conn.host}: {exc}") from None
    resp_headers = {k.lower(): v for k, v in resp.getheaders()}
    if resp.status != 200:
        try:
            body = resp.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            body = b""
        conn.close()
        return Stream(resp.status, resp_headers, body)

    def lines() -> Iterator[bytes]:
        while True:
            try:
                line = resp.readline(MAX_LINE + 1)
            except TimeoutError:
                raise StreamStalled(f"No data for {read_timeout:.0f} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise FetchError(f"The stream broke: {exc}") from None
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                raise FetchError(f"A streamed line is longer than {MAX_LINE} bytes.")
            yield line

    return Stream(200, resp_headers, b"", lines(), conn.close)


_stream_transport: StreamTransport = _pinned_stream


def set_stream_transport(transport: StreamTransport | None) -> StreamTransport:
    global _stream_transport
    previous = _stream_transport
    _stream_transport = transport or _pinned_stream
    return previous


def open_stream(url: str, *, headers: dict[str, str] | None = None, read_timeout: float = 30.0) -> Stream:
    """GET a streaming endpoint; the socket timeout is the read timeout, so a silent
    connection is noticed within it. Raises FetchError for refused hosts and network errors."""
    check_url(url)
    hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    return _stream_transport(url, hdrs, read_timeout)
