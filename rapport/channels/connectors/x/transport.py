"""X replies through API v2 with the account's OAuth 2.0 user token:
- public conversation → `POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}`
  (prefixed with the customer's @handle so they are notified);
- DM → `POST /2/dm_conversations/with/:participant_id/messages {"text"}`.
Credentials: `access_token` (user context, scopes tweet.write dm.write), `user_id`."""

from typing import Any

from rapport.channels.connectors.facebook.transport import last_inbound
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
    ids = last.thread_id.removeprefix("dm:").split("-")
    participant = next((i for i in ids if i and i != me), "")
    if not participant:
        raise http.ApiError("Cannot tell whom to DM: the conversation has no X DM thread.")
    answer = call(channel, "POST", f"/2/dm_conversations/with/{participant}/messages", {"text": message.text})
    data = (answer or {}).get("data") or {}
    return str(data.get("dm_event_id") or f"rapport-{message.pk}")[:300]
