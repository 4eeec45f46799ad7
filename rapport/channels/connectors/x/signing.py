"""X Account Activity API: the CRC challenge and `x-twitter-webhooks-signature`.

CRC: `GET ?crc_token=<t>` → `{"response_token": "sha256=" + base64(HMAC-SHA256(consumer
secret, t))}`. Deliveries: `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the
raw body with the consumer secret>`."""

import base64
import hashlib
import hmac

from rapport.channels.base import SignatureError


def _digest(secret: str, data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    if not consumer_secret:
        raise SignatureError("This channel has no consumer secret configured.")
    if not crc_token or len(crc_token) > 500:
        raise SignatureError("Missing crc_token.")
    return {"response_token": _digest(consumer_secret, crc_token.encode())}


def sign(consumer_secret: str, body: bytes) -> str:
    return _digest(consumer_secret, body)


def verify(consumer_secret: str, body: bytes, header: str) -> None:
    if not consumer_secret:
        raise SignatureError("This channel has no consumer secret configured.")
    given = (header or "").strip()
    if not given.startswith("sha256="):
        raise SignatureError("Missing or malformed x-twitter-webhooks-signature.")
    if not hmac.compare_digest(sign(consumer_secret, body).encode(), given.encode()):
        raise SignatureError("x-twitter-webhooks-signature does not match.")
