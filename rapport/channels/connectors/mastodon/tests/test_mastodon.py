"""Mastodon: notifications normalised (HTML → text, DMs private), poller cursor, replies."""

import json

import pytest

from rapport.channels.base import UnknownEvent
from rapport.channels.connectors.mastodon import inbound, poller
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import FakeAPI, load, make_channel
from rapport.channels.models import ChannelStatus, RawPayload
from rapport.conversations.models import Delivery, Message


@pytest.fixture
def channel(north):
    return make_channel(
        "mastodon", north, settings={"instance_url": "https://mastodon.social"}, access_token="m-token"
    )


def _normalise(channel, name):
    return inbound.normalise(channel, RawPayload(channel=channel, body=load("mastodon", name)))


def test_public_mention_and_direct_message(channel):
    public, direct = _normalise(channel, "notifications.json")
    assert (public.author.kind, public.author.value, public.is_public) == (
        "mastodon",
        "jane@fosstodon.org",
        True,
    )
    assert public.text == "@acme the app keeps logging me out & I lose my cart.\nAny fix?\nThanks"
    assert public.attachments[0].url.endswith("shot.png")
    assert direct.author.value == "sam@mastodon.social"  # a local account gets the instance
    assert not direct.is_public and direct.in_reply_to == "112555000000000000"
    assert direct.text == "@acme my order number is 4471 click"


def test_favourites_give_nothing_and_unknown_types_are_typed(channel):
    assert _normalise(channel, "favourite.json") == []
    with pytest.raises(UnknownEvent):
        inbound.normalise(channel, RawPayload(channel=channel, body=b'[{"id":"1","type":"admin.sign_up"}]'))


def test_poll_stores_then_advances_and_hostile_html_is_sanitised(channel, django_capture_on_commit_callbacks):
    page = json.loads(load("mastodon", "notifications.json"))
    fake = FakeAPI((200, page), (200, []))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        assert poller.poll(channel) == 2
        channel.refresh_from_db()
        assert poller.poll(channel) == 0
    assert fake.calls[0]["url"] == "https://mastodon.social/api/v1/notifications?types%5B%5D=mention&limit=40"
    assert fake.calls[1]["url"].endswith("since_id=34975862")
    assert fake.calls[0]["headers"]["Authorization"] == "Bearer m-token"
    assert Message.objects.count() == 2
    dm = Message.objects.get(external_id="112555000000000002")
    assert "<script" not in dm.html and "javascript:" not in dm.html and "onclick" not in dm.html
    assert (
        Message.objects.get(external_id="112555000000000001").person.identities.get().value
        == "@jane@fosstodon.org"
    )


def test_the_same_page_twice_is_one_set_of_messages(channel, django_capture_on_commit_callbacks):
    page = json.loads(load("mastodon", "notifications.json"))
    with http.use_transport(FakeAPI((200, page))), django_capture_on_commit_callbacks(execute=True):
        poller.poll(channel)
        channel.refresh_from_db()
        channel.settings = {"instance_url": "https://mastodon.social"}  # cursor lost
        channel.save()
        poller.poll(channel)
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    "external,visibility", [("112555000000000001", "public"), ("112555000000000002", "direct")]
)
def test_reply_keeps_visibility_and_mentions_the_author(
    channel, alice, external, visibility, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    page = json.loads(load("mastodon", "notifications.json"))
    with http.use_transport(FakeAPI((200, page))), django_capture_on_commit_callbacks(execute=True):
        poller.poll(channel)
    conv = Message.objects.get(external_id=external).conversation
    fake = FakeAPI((200, {"id": "112555000000000099"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="We're looking into it.")
    reply.refresh_from_db()
    body = fake.json()
    assert fake.calls[0]["url"] == "https://mastodon.social/api/v1/statuses"
    assert body["in_reply_to_id"] == external and body["visibility"] == visibility
    assert body["status"].startswith("@") and body["status"].endswith("We're looking into it.")
    assert fake.calls[0]["headers"]["Idempotency-Key"] == f"rapport-{reply.pk}"
    assert reply.external_id == "112555000000000099" and reply.delivery_status == Delivery.SENT


def test_revoked_token_disables_the_channel(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    page = json.loads(load("mastodon", "notifications.json"))
    with http.use_transport(FakeAPI((200, page))), django_capture_on_commit_callbacks(execute=True):
        poller.poll(channel)
    with (
        http.use_transport(FakeAPI((401, {"error": "The access token was revoked"}))),
        django_capture_on_commit_callbacks(execute=True),
    ):
        conversation_reply(actor=alice, conversation=Message.objects.first().conversation, text="Hi")
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ERROR


def test_private_hop_on_a_public_mention_sends_a_direct_status(
    channel, alice, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_hop, conversation_reply

    page = json.loads(load("mastodon", "notifications.json"))
    with http.use_transport(FakeAPI((200, page))), django_capture_on_commit_callbacks(execute=True):
        poller.poll(channel)
    conv = Message.objects.get(external_id="112555000000000001").conversation
    Message.objects.exclude(conversation=conv).delete()  # only the public mention in this one
    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    fake = FakeAPI((200, {"id": "112555000000000100"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Which browser do you use?")
    reply.refresh_from_db()
    assert fake.calls[0]["url"] == "https://mastodon.social/api/v1/statuses"
    assert fake.json() == {"status": "@jane@fosstodon.org Which browser do you use?", "visibility": "direct"}
    assert fake.calls[0]["headers"]["Idempotency-Key"] == f"rapport-{reply.pk}"
    assert reply.external_id == "112555000000000100" and reply.delivery_status == Delivery.SENT
