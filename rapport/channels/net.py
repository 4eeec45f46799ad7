"""Outbound HTTP for connectors, safe against SSRF: the host is resolved once, the address
checked (no loopback, private, link-local, multicast or reserved ranges, IPv4-mapped IPv6
unwrapped), and the connection pinned to that address, so a DNS answer cannot change between
the check and the request. Redirects are never followed."""

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from django.conf import settings

from rapport.channels.base import TransportError

F = TypeVar("F", bound=Callable[..., Any])

MAX_RESPONSE = 64 * 1024


def _check_address(addr: str) -> None:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise TransportError(f"Refusing to connect to a non-public address ({ip}).", permanent=True)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float):
        # Kept here: the base class stores it as a private attribute the stubs do not declare.
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class ResponseTooLarge(TransportError):
    """The answer is bigger than the caller's cap (declared or read)."""

    def __init__(self, limit: int):
        super().__init__(f"The response is larger than {limit} bytes.", permanent=True)


def pinned_connection(
    url: str, timeout: float, *, allow_private: bool
) -> tuple[http.client.HTTPConnection, str]:
    """Resolve the host once, check that address and return a connection that can only go
    there (with the request path). The one resolution is the point: resolving again at
    connect time is the DNS-rebinding window."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError("The outbound URL must be an http(s) URL.", permanent=True)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TransportError("The URL has an invalid port.", permanent=True)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"Cannot resolve {parts.hostname}: {exc}")
    ip = str(infos[0][4][0])
    if not allow_private:
        _check_address(ip)
    cls = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return cls(parts.hostname, port, ip, timeout), path


def safe_post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 10.0) -> tuple[int, bytes]:
    allow_private = getattr(settings, "RAPPORT_WEBHOOK_ALLOW_PRIVATE", False)
    conn, path = pinned_connection(url, timeout, allow_private=allow_private)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(MAX_RESPONSE)
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"Could not reach {conn.host}: {exc}")
    finally:
        conn.close()


def safe_get(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float = 10.0,
    max_bytes: int = MAX_RESPONSE,
    allow_private: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """GET over a pinned connection: (status, lower-cased headers, body). Redirects come back
    as they are; a caller that follows one calls `safe_get` again for the target, which is
    resolved, checked and pinned in its turn. Raises ResponseTooLarge when Content-Length
    or the body exceeds `max_bytes` (a declared size is refused before reading)."""
    conn, path = pinned_connection(url, timeout, allow_private=allow_private)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        declared = response.getheader("Content-Length") or ""
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(max_bytes)
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ResponseTooLarge(max_bytes)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"Could not reach {conn.host}: {exc}")
    finally:
        conn.close()


class Seam(Generic[F]):
    """The one place a module calls the network through, so tests can put a local fake there:
    `_transport = Seam(_network)`, calls go through `_transport(...)`, and
    `use_transport = _transport.replaced` swaps it for the length of a `with` block."""

    def __init__(self, default: F):
        self.current = default

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.current(*args, **kwargs)

    @contextmanager
    def replaced(self, fake: F) -> Iterator[F]:
        previous, self.current = self.current, fake
        try:
            yield fake
        finally:
            self.current = previous
