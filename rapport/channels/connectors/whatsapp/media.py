"""WhatsApp Cloud API media: an inbound attachment is `whatsapp-media:<media id>`.
`GET /{media-id}` (bearer token) answers `{"url", "mime_type", "sha256", "file_size", "id"}`;
the `url` (valid for five minutes) is then fetched with the same bearer token."""

from typing import Any

from rapport.channels.connectors.meta import graph
from rapport.channels.media import MediaError, Source, get_json
from rapport.channels.models import Channel

PREFIX = "whatsapp-media:"


def source(channel: Channel, message: Any, index: int, attachment: dict[str, Any]) -> Source:
    ref = str(attachment.get("url") or "")
    media_id = ref.removeprefix(PREFIX) if ref.startswith(PREFIX) else ""
    if not media_id or "/" in media_id or "?" in media_id:
        raise MediaError("The WhatsApp attachment has no media id.", permanent=True)
    token = str(channel.credentials.get("access_token", ""))
    if not token:
        raise MediaError("This WhatsApp channel has no access token.", permanent=True)
    auth = {"Authorization": f"Bearer {token}"}
    info = get_json(graph.url(channel, media_id), auth)
    url = str(info.get("url") or "") if isinstance(info, dict) else ""
    if not url:
        raise MediaError("WhatsApp gave no download URL for this media.", permanent=True)
    return Source(url=url, headers=auth)
