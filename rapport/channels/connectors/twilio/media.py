"""Twilio media: MMS `MediaUrl{N}` and call `RecordingUrl` are REST resources under
api.twilio.com, fetched with HTTP basic auth (account SID, auth token). Media answers with a
redirect to Twilio's CDN, which download() follows without the credentials. A recording
URL without an extension serves WAV."""

import base64
from typing import Any

from rapport.channels.media import MediaError, Source, plain_source
from rapport.channels.models import Channel


def source(channel: Channel, message: Any, index: int, attachment: dict[str, Any]) -> Source:
    src = plain_source(attachment)
    creds = channel.credentials
    sid, token = str(creds.get("account_sid", "")), str(creds.get("auth_token", ""))
    if not sid or not token:
        raise MediaError("This Twilio channel has no account SID or auth token.", permanent=True)
    src.headers["Authorization"] = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    return src
