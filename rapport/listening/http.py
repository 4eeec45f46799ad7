"""The one place listening talks HTTP: every poller calls `fetch`, and tests replace it
with a fake (`set_transport`) at this seam only.

Safe by default: http(s) only; the network goes through `rapport.channels.net.safe_get`,
which resolves the host once, checks that address (no loopback, private, link-local,
multicast or reserved ranges; IPv4-mapped IPv6 unwrapped) unless
`settings.RAPPORT_LISTENING_ALLOW_PRIVATE` is set (tests and local development), and pins
the connection to it; redirects are followed by hand, at most three, each hop resolved,
checked and pinned again; a timeout and a size cap (`RAPPORT_LISTENING_MAX_BYTES`, 10 MB by
default) on every response."""

from __future__ import annotations

from collections.abc import Callable
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
