"""The generic webhook's signature scheme (Stripe's): HMAC-SHA256 over "{timestamp}.{raw body}"
with the channel's secret, sent as `X-Rapport-Signature: sha256=<hex>` next to
`X-Rapport-Timestamp: <unix seconds>`. A request older (or newer) than five minutes is a replay."""

import hmac
import time

from rapport.channels.base import SignatureError, hmac_sha256_hex

TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac_sha256_hex(secret, f"{ts}.".encode() + body)
    return {"X-Rapport-Timestamp": str(ts), "X-Rapport-Signature": f"sha256={digest}"}


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, now: float | None = None) -> None:
    if not secret:
        raise SignatureError("This channel has no signing secret configured.")
    try:
        ts = int((timestamp or "").strip())
    except ValueError:
        raise SignatureError("Missing or malformed X-Rapport-Timestamp.")
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE_S:
        raise SignatureError("Timestamp outside the 5-minute window (replayed or clock skew).")
    given = (signature or "").strip()
    if not given.startswith("sha256="):
        raise SignatureError("Missing or malformed X-Rapport-Signature.")
    expected = "sha256=" + hmac_sha256_hex(secret, f"{ts}.".encode() + body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("Signature does not match.")
