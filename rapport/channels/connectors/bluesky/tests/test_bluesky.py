"""Bluesky: notifications normalised, poller cursor, session + createRecord reply refs."""

import json

import pytest

from rapport.channels.base import UnknownEvent
from rapport.channels.connectors.bluesky import inbound, poller, transport
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import FakeAPI, load, make_channel
from rapport.channels.models import ChannelStatus, RawPayload
from rapport.conversations.models import Delivery, Message

SESSION = (
    200,
    {"accessJwt": "jwt-1", "refreshJwt": "r", "did": "did:plc:acme000000", "handle": "acme.bsky.social"},
)


@pytest.fixture
def channel(north):
    transport._sessions.clear()
    yield make_channel("bluesky", north, identifier="acme.bsky.social", app_password="app-pass")
    transport._sessions.clear()


def test_reply_and_mention_normalise_and_likes_are_skipped(channel):
    reply, mention = inbound.normalise(
        channel, RawPayload(channel=channel, body=load("bluesky", "notifications.json"))
    )
    assert reply.external_id == "at://did:plc:jane4471xyz/app.bsky.feed.post/3kuxcr2yqgk2p"
    assert (reply.author.kind, reply.author.value, reply.author.profile["did"]) == (
        "bluesky",
        "JaneDoe.bsky.social",
        "did:plc:jane4471xyz",
    )
    assert reply.parent_id.endswith("3kuxcq1parent") and reply.references[0].endswith("3kuxcp5rootpost")
    assert mention.text.startswith("@acme") and mention.is_public and not mention.parent_id


def test_unknown_reason_is_typed(channel):
    with pytest.raises(UnknownEvent):
        inbound.normalise(
            channel, RawPayload(channel=channel, body=b'{"notifications":[{"reason":"verified"}]}')
        )


def _poll(channel, django_capture_on_commit_callbacks):
    page = json.loads(load("bluesky", "notifications.json"))
    fake = FakeAPI(SESSION, (200, page), (200, page))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        assert poller.poll(channel) == 3
        channel.refresh_from_db()
        assert poller.poll(channel) == 0  # nothing newer than the cursor
    return fake


def test_poll_logs_in_stores_then_advances(channel, django_capture_on_commit_callbacks):
    fake = _poll(channel, django_capture_on_commit_callbacks)
    assert fake.calls[0]["url"] == "https://bsky.social/xrpc/com.atproto.server.createSession"
    assert fake.json(0) == {"identifier": "acme.bsky.social", "password": "app-pass"}
    assert fake.calls[1]["url"] == "https://bsky.social/xrpc/app.bsky.notification.listNotifications?limit=50"
    assert fake.calls[1]["headers"]["Authorization"] == "Bearer jwt-1"
    assert channel.settings["bluesky_seen_at"] == "2024-06-03T14:26:00.100Z"
    assert Message.objects.count() == 2 and RawPayload.objects.count() == 1
    assert (
        Message.objects.get(author_value="JaneDoe.bsky.social").person.identities.get().value
        == "janedoe.bsky.social"
    )


def test_reply_creates_a_post_with_root_and_parent_refs(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    _poll(channel, django_capture_on_commit_callbacks)
    conv = Message.objects.get(author_value="JaneDoe.bsky.social").conversation
    fake = FakeAPI((200, {"uri": "at://did:plc:acme000000/app.bsky.feed.post/3kout", "cid": "bafyout"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="So sorry, refund issued today.")
    reply.refresh_from_db()
    assert fake.calls[0]["url"] == "https://bsky.social/xrpc/com.atproto.repo.createRecord"
    body = fake.json()
    assert body["repo"] == "did:plc:acme000000" and body["collection"] == "app.bsky.feed.post"
    assert body["record"]["reply"] == {
        "root": {
            "uri": "at://did:plc:acme000000/app.bsky.feed.post/3kuxcp5rootpost",
            "cid": "bafyreirootcid",
        },
        "parent": {
            "uri": "at://did:plc:jane4471xyz/app.bsky.feed.post/3kuxcr2yqgk2p",
            "cid": "bafyreih4replycid",
        },
    }
    assert (
        reply.external_id == "at://did:plc:acme000000/app.bsky.feed.post/3kout"
        and reply.delivery_status == Delivery.SENT
    )


def test_expired_jwt_is_renewed_once_and_a_refused_password_disables(
    channel, alice, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    _poll(channel, django_capture_on_commit_callbacks)
    conv = Message.objects.get(author_value="sam.example.com").conversation
    fake = FakeAPI(
        (400, {"error": "ExpiredToken"}),
        (200, {**SESSION[1], "accessJwt": "jwt-2"}),
        (200, {"uri": "at://x/y/z"}),
    )
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        ok = conversation_reply(actor=alice, conversation=conv, text="Yes!")
    ok.refresh_from_db()
    assert ok.delivery_status == Delivery.SENT and fake.calls[2]["headers"]["Authorization"] == "Bearer jwt-2"
    transport._sessions.clear()
    with (
        http.use_transport(FakeAPI((401, {"error": "AuthenticationRequired"}))),
        django_capture_on_commit_callbacks(execute=True),
    ):
        conversation_reply(actor=alice, conversation=conv, text="Again")
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ERROR


@pytest.mark.parametrize("notifications", [b'{"notifications": 7}', b'{"notifications": "x"}', b"[]", b"{"])
def test_reply_refs_from_an_unusable_stored_body_are_a_clear_api_error(channel, notifications):
    from types import SimpleNamespace

    message = SimpleNamespace(
        external_id="at://did:plc:x/app.bsky.feed.post/1",
        raw_payload=RawPayload(channel=channel, body=notifications),
    )
    with pytest.raises(http.ApiError, match="cid is not in its stored notification"):
        transport._refs(message)
