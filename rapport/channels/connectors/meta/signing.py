"""Meta (Graph API) webhooks: the verify-token handshake and `X-Hub-Signature-256`.

Handshake: Meta calls `GET ?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`
once when the webhook is configured; we echo the challenge when the token matches.
Deliveries: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, app secret>`."""

import hmac

from rapport.channels.base import SignatureError, hmac_sha256_hex


def handshake(params: dict[str, str], verify_token: str) -> str:
    """The challenge to echo; SignatureError when the token is wrong or missing."""
    if params.get("hub.mode") != "subscribe":
        raise SignatureError("hub.mode must be subscribe.")
    given = params.get("hub.verify_token", "")
    if not verify_token or not hmac.compare_digest(given.encode(), verify_token.encode()):
        raise SignatureError("The verify token does not match.")
    challenge = params.get("hub.challenge", "")
    if not challenge or len(challenge) > 200:
        raise SignatureError("Missing hub.challenge.")
    return challenge


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac_sha256_hex(app_secret, body)


def verify(app_secret: str, body: bytes, header: str) -> None:
    if not app_secret:
        raise SignatureError("This channel has no app secret configured.")
    given = (header or "").strip()
    if not given.startswith("sha256="):
        raise SignatureError("Missing or malformed X-Hub-Signature-256.")
    if not hmac.compare_digest(sign(app_secret, body).encode(), given.encode()):
        raise SignatureError("X-Hub-Signature-256 does not match.")
