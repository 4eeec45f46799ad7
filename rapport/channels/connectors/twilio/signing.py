"""`X-Twilio-Signature`: base64(HMAC-SHA1(auth token, full URL + every POST parameter name
and value, sorted by name, concatenated)). The URL is the one Twilio called, including the
query string, exactly as configured in the console."""

import base64
import hashlib
import hmac

from rapport.channels.base import SignatureError


def sign(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    ).decode()


def verify(auth_token: str, url: str, params: list[tuple[str, str]], header: str) -> None:
    if not auth_token:
        raise SignatureError("This channel has no Twilio auth token configured.")
    if not header:
        raise SignatureError("Missing X-Twilio-Signature.")
    if not hmac.compare_digest(sign(auth_token, url, params).encode(), header.strip().encode()):
        raise SignatureError("X-Twilio-Signature does not match.")
