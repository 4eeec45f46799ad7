"""Channel credentials are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from RAPPORT_CREDENTIALS_KEY when set, so credentials survive a SECRET_KEY
rotation and a stolen database dump alone reveals nothing; otherwise it is derived from
SECRET_KEY. Either way the raw setting is stretched through HKDF, so any string works."""

import base64
import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialsError(Exception):
    """Stored credentials cannot be decrypted (the key changed or the row was tampered with)."""


def _fernet() -> Fernet:
    secret = os.environ.get("RAPPORT_CREDENTIALS_KEY") or settings.SECRET_KEY
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rapport-channel-credentials", info=b"v1").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(data: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError) as exc:
        raise CredentialsError("The channel credentials cannot be decrypted; enter them again.") from exc
    return value if isinstance(value, dict) else {}
