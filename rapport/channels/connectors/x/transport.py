"""X replies through API v2 with the account's OAuth 2.0 user token:
- public conversation → `POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}`
  (prefixed with the customer's @handle so they are notified);
- DM → `POST /2/dm_conversations/with/:participant_id/messages {"text"}`.
Credentials: `access_token` (user context, scopes tweet.write dm.write), `user_id`.

After "continue as private message" (`conversation.reply_mode == "private"`) a public thread
is answered by DM: to the participant of a DM thread the conversation already has on this
channel, else to the author's numeric user id as the webhook or poller gave it (kept in the
raw payload's author profile; a handle can change, the id cannot)."""

from typing import Any

from rapport.channels.connectors.facebook.transport import inbound_message, is_private, last_inbound
from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel

API = "https://api.x.com"


def base(channel: Channel) -> str:
    return str((channel.settings or {}).get("api_url") or API).rstrip("/")


def call(channel: Channel, method: str, path: str, body: Any = None) -> Any:
    token = str(channel.credentials.get("access_token", ""))
    if not token:
        raise http.ApiError("This X channel has no access token.", permanent=True)
    resp = http.request(
        method, base(channel) + path, json_body=body, headers={"Authorization": f"Bearer {token}"}
    )
    return http.check(resp, "X")


def send(channel: Channel, message: Any) -> str:
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no X message.")
    me = str(channel.credentials.get("user_id", ""))
    if last.is_public and is_private(message):
        return _dm(channel, message, _private_participant(message, last, me))
    if last.is_public:
        handle = last.author_value.lstrip("@")
        text = (
            message.text
            if message.text.lstrip().lower().startswith(f"@{handle.lower()}")
            else f"@{handle} {message.text}"
        )
        answer = call(
            channel, "POST", "/2/tweets", {"text": text, "reply": {"in_reply_to_tweet_id": last.external_id}}
        )
        return str(((answer or {}).get("data") or {}).get("id") or f"rapport-{message.pk}")[:300]
    return _dm(channel, message, _participant(last.thread_id, me))


def _participant(thread_id: str, me: str) -> str:
    ids = thread_id.removeprefix("dm:").split("-")
    return next((i for i in ids if i and i != me), "")


def _private_participant(message: Any, last: Any, me: str) -> str:
    dm = (
        message.conversation.messages.filter(
            direction="inbound", channel=message.channel, is_public=False, thread_id__startswith="dm:"
        )
        .order_by("-id")
        .first()
    )
    if dm is not None and _participant(dm.thread_id, me):
        return _participant(dm.thread_id, me)
    original = inbound_message(last)
    user_id = str((original.author.profile or {}).get("user_id", "")) if original is not None else ""
    return "" if user_id == me else user_id


def _dm(channel: Channel, message: Any, participant: str) -> str:
    # The id comes from platform payloads and goes into a URL path: digits only.
    if not participant.isdigit():
        raise http.ApiError("Cannot tell whom to DM: no X user id is known for this customer.")
    answer = call(channel, "POST", f"/2/dm_conversations/with/{participant}/messages", {"text": message.text})
    data = (answer or {}).get("data") or {}
    return str(data.get("dm_event_id") or f"rapport-{message.pk}")[:300]
