"""The one place listening talks HTTP: every poller calls `fetch`, and tests replace it
with a fake (`set_transport`) at this seam only.

Safe by default: http(s) only; the host is resolved and every address checked (no loopback,
private, link-local, multicast or reserved ranges; IPv4-mapped IPv6 unwrapped) unless
`settings.RAPPORT_LISTENING_ALLOW_PRIVATE` is set (tests and local development); redirects
are followed by hand, at most three, each hop checked again; a timeout and a size cap
(`RAPPORT_LISTENING_MAX_BYTES`, 10 MB by default) on every response."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings

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


def check_host(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("Only http(s) URLs can be polled.", permanent=True)
    if getattr(settings, "RAPPORT_LISTENING_ALLOW_PRIVATE", False):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Cannot resolve {parts.hostname}: {exc}")
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise FetchError(f"Refusing to fetch from a non-public address ({ip}).", permanent=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # we follow redirects ourselves, re-checking each host


_opener = urllib.request.build_opener(_NoRedirect)


def _urllib_transport(url: str, headers: dict[str, str], timeout: float, limit: int) -> Response:
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 — scheme checked
    try:
        resp = _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        resp = exc  # 3xx/4xx/5xx still carry headers and a body we want to read
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"Could not reach {urlsplit(url).hostname}: {exc}")
    try:
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge(limit)
        body = resp.read(limit + 1) or b""
        if len(body) > limit:
            raise TooLarge(limit)
        return Response(
            status=resp.status if hasattr(resp, "status") else resp.code,
            body=body,
            headers={k.lower(): v for k, v in resp.headers.items()},
            url=url,
        )
    except (OSError, ValueError) as exc:
        if isinstance(exc, FetchError):
            raise
        raise FetchError(f"Reading from {urlsplit(url).hostname} failed: {exc}")
    finally:
        resp.close()


_transport: Transport = _urllib_transport


def set_transport(transport: Transport | None) -> Transport:
    """Replace the network (tests). Returns the previous transport; None restores urllib."""
    global _transport
    previous = _transport
    _transport = transport or _urllib_transport
    return previous


def fetch(url: str, *, headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> Response:
    """GET `url`; returns any status (callers decide what 304, 429 or 5xx mean) after at most
    three checked redirects. Raises FetchError for refused hosts, network errors and bodies
    over the size cap."""
    limit = max_bytes()
    hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    for _ in range(MAX_REDIRECTS + 1):
        check_host(url)
        resp = _transport(url, hdrs, timeout, limit)
        if len(resp.body) > limit:
            raise TooLarge(limit)
        if resp.status in (301, 302, 303, 307, 308) and resp.header("location"):
            url = urljoin(url, resp.header("location"))
            continue
        return resp
    raise FetchError("Too many redirects.", permanent=True)
