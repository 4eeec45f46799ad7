"""The one HTTP seam of the social connectors (X, Mastodon, Bluesky, Meta, Twilio): every
API call goes through `request`, and tests replace the network with `use_transport`.

It reuses `rapport.channels.net`'s SSRF guard (address checked, connection pinned to it,
no redirects) but, unlike `net.safe_post`, speaks any method and returns the response
headers, because the platforms' answers need them (Retry-After, rate-limit resets).
It lives here, not in net.py, only because this package owns no shared module; moving
`request` into net.py as `safe_request` changes nothing for callers."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings

from rapport.channels import net
from rapport.channels.base import TransportError

MAX_RESPONSE = 2 * 1024 * 1024
USER_AGENT = "Rapport/1 (+https://github.com/rapport-crm)"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            return None


class ApiError(TransportError):
    """A platform call failed. `permanent`: the credentials are revoked or refused, so the
    channel must be disabled (401/403). `retry_after`: seconds the platform asked us to
    wait (429/503). `status`: the HTTP status, 0 when the platform was not reached."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: int | None = None, status: int = 0
    ):
        super().__init__(message, permanent=permanent)
        self.retry_after = retry_after
        self.status = status


Transport = Callable[[str, str, bytes, dict[str, str], float], Response]


def _network(method: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    allow_private = getattr(settings, "RAPPORT_WEBHOOK_ALLOW_PRIVATE", False)
    try:
        # Resolve once, check, and connect only to that address (see rapport.channels.net).
        conn, path = net.pinned_connection(url, timeout, allow_private=allow_private)
    except TransportError as exc:
        raise ApiError(str(exc), permanent=exc.permanent)
    host = conn.host
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE + 1)
        if len(data) > MAX_RESPONSE:
            raise ApiError(f"{host} answered more than {MAX_RESPONSE // 1024} KB.")
        return Response(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    except (OSError, http.client.HTTPException) as exc:
        raise ApiError(f"Could not reach {host}: {exc}")
    finally:
        conn.close()


_transport: net.Seam[Transport] = net.Seam(_network)
use_transport = _transport.replaced  # tests: `with use_transport(fake): …`


def request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    hdrs = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    body = b""
    if json_body is not None:
        body = json.dumps(json_body, separators=(",", ":")).encode()
        hdrs["Content-Type"] = "application/json"
    elif form is not None:
        from urllib.parse import urlencode

        body = urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    return _transport(method, url, body, hdrs, timeout)


def retry_after(resp: Response, now: dt.datetime | None = None) -> int | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date) or X's
    x-rate-limit-reset (a Unix time)."""
    value = resp.header("retry-after").strip()
    now = now or dt.datetime.now(dt.UTC)
    if value.isdigit():
        return min(int(value), 86400)
    if value:
        try:
            when = parsedate_to_datetime(value)
            return max(0, min(int((when - now).total_seconds()), 86400))
        except (TypeError, ValueError):
            pass
    reset = resp.header("x-rate-limit-reset").strip()
    if reset.isdigit():
        return max(0, min(int(reset) - int(now.timestamp()), 86400))
    return None


def check(resp: Response, platform: str) -> Any:
    """The JSON of a 2xx answer, or the ApiError the status means. 401/403 are permanent
    (revoked or refused credentials: the channel is disabled and admins told); 429 and 5xx
    are transient and carry Retry-After; other 4xx (a deleted post, a recipient who cannot
    be messaged) are not the channel's fault, so they are transient too and the pipeline
    gives up on the message after its attempts, without disabling the channel."""
    if 200 <= resp.status < 300:
        return resp.json()
    detail = resp.body[:300].decode("utf-8", errors="replace")
    if resp.status in (401, 403):
        raise ApiError(
            f"{platform} refused our credentials (HTTP {resp.status}): {detail}",
            permanent=True,
            status=resp.status,
        )
    wait = retry_after(resp) if resp.status == 429 or resp.status >= 500 else None
    suffix = f"; retry after {wait} s" if wait is not None else ""
    raise ApiError(
        f"{platform} answered HTTP {resp.status}{suffix}: {detail}", retry_after=wait, status=resp.status
    )


def claim_poll(channel: Any) -> bool:
    """Claim a channel's poll with a conditional UPDATE (compare-and-set on updated_at), so
    two schedulers or workers never poll the same channel at once."""
    from django.utils import timezone

    from rapport.channels.models import Channel

    now = timezone.now()
    won = Channel.objects.filter(pk=channel.pk, updated_at=channel.updated_at).update(updated_at=now)
    if won:
        channel.updated_at = now
    return bool(won)


def save_cursor(channel: Any, **values: Any) -> None:
    """Advance a poller's cursor in Channel.settings (after the page is stored)."""
    from rapport.channels.models import Channel

    fresh = Channel.objects.get(pk=channel.pk)
    fresh.settings = {**(fresh.settings or {}), **values}
    Channel.objects.filter(pk=channel.pk).update(settings=fresh.settings)
    channel.settings = fresh.settings
