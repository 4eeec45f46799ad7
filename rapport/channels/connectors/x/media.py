"""X media: tweet media (`media_url_https`, pbs.twimg.com) is public; DM media lives on
ton.twitter.com, which serves it only to the account's own authorised requests, so that
host alone gets the channel's bearer token (X documents OAuth 1.0a user context for it; an
OAuth 2.0 token it refuses shows as a failed attachment with X's answer)."""

from typing import Any
from urllib.parse import urlsplit

from rapport.channels.media import Source, plain_source
from rapport.channels.models import Channel

PRIVATE_MEDIA_HOST = "ton.twitter.com"


def source(channel: Channel, message: Any, index: int, attachment: dict[str, Any]) -> Source:
    src = plain_source(attachment)
    token = str(channel.credentials.get("access_token", ""))
    if token and urlsplit(src.url).hostname == PRIVATE_MEDIA_HOST and src.url.startswith("https://"):
        src.headers["Authorization"] = f"Bearer {token}"
    return src
