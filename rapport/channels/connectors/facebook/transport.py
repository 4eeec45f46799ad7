"""Replies on a Facebook Page: a Messenger conversation is answered with the Send API
(`POST /{page-id}/messages`, `messaging_type: RESPONSE`), a feed comment with a comment
reply (`POST /{comment-id}/comments`). Credentials: `page_access_token`, `page_id`."""

from typing import Any

from rapport.channels.connectors.meta import graph, http
from rapport.channels.models import Channel


def last_inbound(message: Any) -> Any:
    return (
        message.conversation.messages.filter(direction="inbound", channel=message.channel)
        .order_by("-id")
        .first()
    )


def send_messenger(
    channel: Channel, message: Any, recipient: str, page_id: str, token: str, platform: str
) -> str:
    answer = graph.post(
        channel,
        f"{page_id}/messages",
        {
            "recipient": {"id": recipient},
            "messaging_type": "RESPONSE",
            "message": {"text": message.text[:2000]},
        },
        token,
        platform,
    )
    return str((answer or {}).get("message_id") or f"rapport-{message.pk}")[:300]


def send(channel: Channel, message: Any) -> str:
    creds = channel.credentials
    token, page_id = str(creds.get("page_access_token", "")), str(creds.get("page_id", "") or "me")
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no Facebook message.")
    if last.is_public:
        answer = graph.post(
            channel, f"{last.external_id}/comments", {"message": message.text[:8000]}, token, "Facebook"
        )
        return str((answer or {}).get("id") or f"rapport-{message.pk}")[:300]
    return send_messenger(channel, message, last.author_value, page_id, token, "Facebook")
