"""Visitor tokens: a signed visitor id, salted per channel, so a token of one site's widget is
worthless on another channel and no table of visitors is needed. Kept by the widget in
localStorage; whoever holds it reads that visitor's conversation, nothing else."""

import secrets

from django.core import signing

from rapport.channels.models import Channel

MAX_AGE_S = 180 * 24 * 3600


def _salt(channel: Channel) -> str:
    return f"rapport.chat.visitor.{channel.pk}"


def issue(channel: Channel) -> tuple[str, str]:
    visitor = secrets.token_urlsafe(18)
    return visitor, signing.dumps(visitor, salt=_salt(channel), compress=False)


def visitor_of(channel: Channel, token: str) -> str | None:
    if not token or len(token) > 300:
        return None
    try:
        value = signing.loads(token, salt=_salt(channel), max_age=MAX_AGE_S)
    except signing.BadSignature:
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None
