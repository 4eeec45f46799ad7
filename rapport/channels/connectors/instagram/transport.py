"""Replies on Instagram: a DM through the Messenger Platform (`POST /{ig-user-id}/messages`
with the Instagram-scoped id as recipient), a comment with `POST /{ig-comment-id}/replies`.
Credentials: `access_token` (a Page or Instagram token), `ig_user_id`.

After "continue as private message" a comment is answered in the customer's DMs: to their
Instagram-scoped id when the conversation knows it, else with a private reply to the comment
(`POST /{ig-user-id}/messages` with `recipient: {comment_id}`)."""

from typing import Any

from rapport.channels.connectors.facebook.transport import (
    is_private,
    last_inbound,
    scoped_id,
    send_messenger,
    send_private_reply,
)
from rapport.channels.connectors.meta import graph, http
from rapport.channels.models import Channel


def send(channel: Channel, message: Any) -> str:
    creds = channel.credentials
    token, ig_user = str(creds.get("access_token", "")), str(creds.get("ig_user_id", "") or "me")
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no Instagram message.")
    if last.is_public and is_private(message):
        igsid = scoped_id(message)
        if igsid:
            return send_messenger(channel, message, igsid, ig_user, token, "Instagram")
        if last.external_id.startswith("mention:"):
            raise http.ApiError(
                "A mention in a caption has no comment to answer privately; write on Instagram."
            )
        return send_private_reply(
            channel, message, {"comment_id": last.external_id}, ig_user, token, "Instagram"
        )
    if last.is_public:
        if last.external_id.startswith("mention:"):
            raise http.ApiError("A mention in a caption cannot be answered from here; reply on Instagram.")
        answer = graph.post(
            channel, f"{last.external_id}/replies", {"message": message.text[:2200]}, token, "Instagram"
        )
        return str((answer or {}).get("id") or f"rapport-{message.pk}")[:300]
    return send_messenger(channel, message, last.author_value, ig_user, token, "Instagram")
