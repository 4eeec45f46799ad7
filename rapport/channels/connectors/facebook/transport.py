"""Replies on a Facebook Page: a Messenger conversation is answered with the Send API
(`POST /{page-id}/messages`, `messaging_type: RESPONSE`), a feed comment with a comment
reply (`POST /{comment-id}/comments`). Credentials: `page_access_token`, `page_id`.

After "continue as private message" (`conversation.reply_mode == "private"`) a public thread
is answered in Messenger: to the customer's PSID when the conversation knows it (they wrote
to the Page, or answered an earlier private reply), else with Meta's private reply to their
comment (`POST /{page-id}/messages` with `recipient: {comment_id}`; `{post_id}` for a
visitor post). The PSID Meta answers with is kept as the reply's thread id, so the
customer's Messenger answer threads into the same conversation."""

import logging
from typing import Any

from rapport.channels.base import CanonicalMessage
from rapport.channels.connectors.meta import graph, http
from rapport.channels.models import Channel

log = logging.getLogger(__name__)


def last_inbound(message: Any) -> Any:
    return (
        message.conversation.messages.filter(direction="inbound", channel=message.channel)
        .order_by("-id")
        .first()
    )


def is_private(message: Any) -> bool:
    """An agent moved the conversation to the platform's private side (a channel hop)."""
    return getattr(message.conversation, "reply_mode", "") == "private"


def inbound_message(row: Any) -> CanonicalMessage | None:
    """The canonical message a stored inbound row came from, read again from its raw payload:
    what the row does not keep (an author's numeric id, whether a feed item was a comment) is
    there. None when the payload is gone or no longer readable."""
    from rapport.channels import registry

    payload = getattr(row, "raw_payload", None)
    if payload is None or row.channel is None:
        return None
    try:
        found = registry.inbound(row.channel.kind).normalise(row.channel, payload)
    except Exception:  # noqa: BLE001 - an unreadable payload only means "not known"
        log.warning("could not read payload %s again for message %s", payload.pk, row.pk)
        return None
    return next((cm for cm in found if cm.external_id == row.external_id), None)


def scoped_id(message: Any) -> str:
    """The customer's Messenger id in this conversation on this channel, if known: the
    author of their newest private message, or the recipient of our newest private reply."""
    rows = (
        message.conversation.messages.filter(channel=message.channel, is_public=False)
        .exclude(thread_id="")
        .exclude(pk=message.pk)
        .order_by("-id")
        .values_list("direction", "author_value", "thread_id")[:20]
    )
    for direction, author, thread in rows:
        value = author if direction == "inbound" else thread.rpartition(":")[2]
        if value.isdigit():
            return str(value)
    return ""


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


def send_private_reply(
    channel: Channel, message: Any, recipient: dict[str, str], page_id: str, token: str, platform: str
) -> str:
    """Meta's private reply: one Messenger/Instagram message to the author of a comment."""
    from rapport.conversations.models import Message

    answer = graph.post(
        channel,
        f"{page_id}/messages",
        {"recipient": recipient, "message": {"text": message.text[:2000]}},
        token,
        platform,
    )
    psid = str((answer or {}).get("recipient_id") or "")
    if psid.isdigit() and page_id != "me":
        # The same thread id their Messenger answer will carry (page id:PSID).
        Message.objects.filter(pk=message.pk).update(thread_id=f"{page_id}:{psid}"[:300])
    return str((answer or {}).get("message_id") or f"rapport-{message.pk}")[:300]


def send(channel: Channel, message: Any) -> str:
    creds = channel.credentials
    token, page_id = str(creds.get("page_access_token", "")), str(creds.get("page_id", "") or "me")
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no Facebook message.")
    if last.is_public and is_private(message):
        psid = scoped_id(message)
        if psid:
            return send_messenger(channel, message, psid, page_id, token, "Facebook")
        original = inbound_message(last)
        target = "post_id" if original is not None and not original.parent_id else "comment_id"
        return send_private_reply(channel, message, {target: last.external_id}, page_id, token, "Facebook")
    if last.is_public:
        answer = graph.post(
            channel, f"{last.external_id}/comments", {"message": message.text[:8000]}, token, "Facebook"
        )
        return str((answer or {}).get("id") or f"rapport-{message.pk}")[:300]
    return send_messenger(channel, message, last.author_value, page_id, token, "Facebook")
