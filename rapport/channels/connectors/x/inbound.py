"""X → canonical messages, from two sources:

- Account Activity webhooks (v1.1 objects): `tweet_create_events` (mentions and replies,
  public, threaded by `in_reply_to_status_id_str`) and `direct_message_events` (DMs,
  private, threaded by the DM conversation `<low id>-<high id>`). Our own tweets and DMs
  (author = `for_user_id`) are skipped. Favourites, follows, deletes, typing and read
  indicators give no message; any other event key is an UnknownEvent.
- The mentions poller (`GET /2/users/:id/mentions`, v2 objects), stored with the header
  `X-Rapport-Event: mentions.v2`.

The author identity is the handle (kind `x`), so a person with that X handle is found; the
numeric user id goes in the profile (the handle can change, the id cannot)."""

import datetime as dt
import json
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, UnknownEvent
from rapport.channels.connectors.meta.graph import millis, obj, text
from rapport.channels.models import Channel, ChannelKind, RawPayload

KIND = ChannelKind.X


def _when_v1(value: Any) -> dt.datetime | None:
    try:
        return parsedate_to_datetime(value) if isinstance(value, str) else None
    except (TypeError, ValueError):
        return None


def _when_v2(value: Any) -> dt.datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def dm_conversation_id(a: str, b: str) -> str:
    """X's one-to-one DM conversation id: both user ids, lower first."""
    lo, hi = sorted((a, b), key=lambda v: (len(v), v))
    return f"{lo}-{hi}"


def _media(entities: dict[str, Any]) -> tuple[Attachment, ...]:
    out = []
    for m in (entities.get("media") or [])[:10] if isinstance(entities.get("media"), list) else []:
        if isinstance(m, dict):
            out.append(
                Attachment(
                    filename=text(m, "id_str", 100) or "media",
                    content_type={"photo": "image/*", "video": "video/*", "animated_gif": "image/gif"}.get(
                        text(m, "type", 20), "application/octet-stream"
                    ),
                    url=text(m, "media_url_https", 2000),
                )
            )
    return tuple(out)


def tweet_create_events(data: dict[str, Any]) -> list[CanonicalMessage]:
    me = text(data, "for_user_id", 40)
    out = []
    for tweet in data.get("tweet_create_events") or []:
        if not isinstance(tweet, dict):
            raise NormaliseError("tweet_create_events[] must be objects.")
        user = obj(tweet, "user")
        tid, uid, handle = text(tweet, "id_str", 40), text(user, "id_str", 40), text(user, "screen_name", 40)
        if not tid or not handle:
            raise NormaliseError("A tweet needs id_str and user.screen_name.")
        if uid and uid == me or "retweeted_status" in tweet:
            continue  # our own tweet, or a retweet (nothing to answer)
        extended = obj(tweet, "extended_tweet")
        body = text(extended, "full_text") or text(tweet, "full_text") or text(tweet, "text")
        out.append(
            CanonicalMessage(
                channel_kind=KIND,
                external_id=tid,
                author=Author(
                    kind="x",
                    value=handle,
                    display_name=text(user, "name", 200),
                    profile={"user_id": uid, "followers": user.get("followers_count", "")},
                ),
                text=body,
                sent_at=_when_v1(tweet.get("created_at")),
                in_reply_to=text(tweet, "in_reply_to_status_id_str", 40),
                is_public=True,
                attachments=_media(obj(extended, "extended_entities") or obj(tweet, "extended_entities")),
            )
        )
    return out


def direct_message_events(data: dict[str, Any]) -> list[CanonicalMessage]:
    me = text(data, "for_user_id", 40)
    users = obj(data, "users")
    out = []
    for event in data.get("direct_message_events") or []:
        if not isinstance(event, dict):
            raise NormaliseError("direct_message_events[] must be objects.")
        if event.get("type") != "message_create":
            continue
        create = obj(event, "message_create")
        sender = text(create, "sender_id", 40)
        recipient = text(obj(create, "target"), "recipient_id", 40)
        eid = text(event, "id", 40)
        if not eid or not sender:
            raise NormaliseError("A DM event needs id and message_create.sender_id.")
        if sender == me:
            continue  # our own DM, echoed back
        user = obj(users, sender)
        handle = text(user, "screen_name", 40)
        message_data = obj(create, "message_data")
        attachment = obj(obj(message_data, "attachment"), "media")
        atts = (
            (
                Attachment(
                    filename="media", content_type="image/*", url=text(attachment, "media_url_https", 2000)
                ),
            )
            if attachment
            else ()
        )
        out.append(
            CanonicalMessage(
                channel_kind=KIND,
                external_id=eid,
                author=Author(
                    kind="x",
                    value=handle or sender,
                    display_name=text(user, "name", 200),
                    profile={"user_id": sender},
                ),
                text=text(message_data, "text"),
                sent_at=millis(event.get("created_timestamp")),
                thread_id=f"dm:{dm_conversation_id(sender, recipient or me)}",
                attachments=atts,
            )
        )
    return out


def mentions_v2(data: dict[str, Any]) -> list[CanonicalMessage]:
    users = {text(u, "id", 40): u for u in (obj(data, "includes").get("users") or []) if isinstance(u, dict)}
    out = []
    for tweet in data.get("data") or []:
        if not isinstance(tweet, dict):
            raise NormaliseError("data[] must be tweet objects.")
        tid, uid = text(tweet, "id", 40), text(tweet, "author_id", 40)
        user = users.get(uid, {})
        handle = text(user, "username", 40)
        if not tid or not (handle or uid):
            raise NormaliseError("A v2 tweet needs id and author_id.")
        replied = [
            text(r, "id", 40)
            for r in tweet.get("referenced_tweets") or []
            if isinstance(r, dict) and r.get("type") == "replied_to"
        ]
        out.append(
            CanonicalMessage(
                channel_kind=KIND,
                external_id=tid,
                author=Author(
                    kind="x",
                    value=handle or uid,
                    display_name=text(user, "name", 200),
                    profile={"user_id": uid},
                ),
                text=text(tweet, "text"),
                sent_at=_when_v2(tweet.get("created_at")),
                in_reply_to=replied[0] if replied else "",
                references=(text(tweet, "conversation_id", 40),)
                if text(tweet, "conversation_id", 40)
                else (),
                is_public=True,
            )
        )
    return out


def _nothing(data: dict[str, Any]) -> list[CanonicalMessage]:
    return []


EVENTS: dict[str, Callable[[dict[str, Any]], list[CanonicalMessage]]] = {
    "tweet_create_events": tweet_create_events,
    "direct_message_events": direct_message_events,
    "mentions.v2": mentions_v2,
    "favorite_events": _nothing,
    "follow_events": _nothing,
    "unfollow_events": _nothing,
    "tweet_delete_events": _nothing,
    "direct_message_indicate_typing_events": _nothing,
    "direct_message_mark_read_events": _nothing,
    "user_event": _nothing,
    "block_events": _nothing,
    "mute_events": _nothing,
}
ENVELOPE = {"for_user_id", "users", "apps", "user_has_blocked", "source"}


def parse(payload: RawPayload) -> dict[str, Any]:
    try:
        data = json.loads(payload.body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormaliseError(f"The body is not UTF-8 JSON ({exc.__class__.__name__}).")
    if not isinstance(data, dict):
        raise NormaliseError("The body must be a JSON object.")
    return data


def event_keys(payload: RawPayload, data: dict[str, Any]) -> list[str]:
    if (payload.headers or {}).get("X-Rapport-Event") == "mentions.v2":
        return ["mentions.v2"]
    keys = [k for k in data if k not in ENVELOPE]
    if not keys:
        raise UnknownEvent("The payload has no event.")
    return keys


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    data = parse(payload)
    out: list[CanonicalMessage] = []
    for key in event_keys(payload, data):
        handler = EVENTS.get(key)
        if handler is None:
            raise UnknownEvent(f"Unknown X event {key[:60]!r}.")
        out.extend(handler(data))
    return [m.__class__(**{**m.__dict__, "raw_ref": payload.pk}) for m in out]
