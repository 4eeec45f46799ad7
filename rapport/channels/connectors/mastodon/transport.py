"""Mastodon replies: `POST {instance}/api/v1/statuses` with `status` (starting with the
customer's @address so they are notified), `in_reply_to_id` and `visibility` (`direct` when
the customer wrote privately, else `public`), and an `Idempotency-Key` so a retried send
never posts twice. Credentials: `access_token` (scope write:statuses read:notifications);
settings: `instance_url`.

After "continue as private message" (`conversation.reply_mode == "private"`) a public thread
is answered with a `direct` status mentioning the author (Mastodon's DMs are exactly that),
not attached to their public post, so it starts the private side of the conversation."""

from typing import Any

from rapport.channels.connectors.facebook.transport import is_private, last_inbound
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel


def call(
    channel: Channel, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    token = str(channel.credentials.get("access_token", ""))
    base = str((channel.settings or {}).get("instance_url", "")).rstrip("/")
    if not token or not base:
        raise http.ApiError("This Mastodon channel needs instance_url and an access token.", permanent=True)
    resp = http.request(
        method, base + path, json_body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    return http.check(resp, "Mastodon")


def send(channel: Channel, message: Any) -> str:
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no Mastodon message.")
    mention = "@" + last.author_value.lstrip("@")
    text = message.text if message.text.lstrip().startswith(mention) else f"{mention} {message.text}"
    body = {
        "status": text,
        "in_reply_to_id": last.external_id,
        "visibility": "public" if last.is_public else "direct",
    }
    if last.is_public and is_private(message):
        body = {"status": text, "visibility": "direct"}
    answer = call(
        channel, "POST", "/api/v1/statuses", body, headers={"Idempotency-Key": f"rapport-{message.pk}"}
    )
    return str((answer or {}).get("id") or f"rapport-{message.pk}")[:300]
