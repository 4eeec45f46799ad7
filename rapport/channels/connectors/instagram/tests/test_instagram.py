"""Instagram: DMs, comments, mentions; replies through the Graph API."""

import pytest
from django.test import Client

from rapport.channels.base import UnknownEvent
from rapport.channels.connectors.instagram import inbound
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import APP_SECRET, FakeAPI, load, make_channel, post_meta
from rapport.channels.models import RawPayload
from rapport.conversations.models import Delivery, Message
from rapport.people.models import Identity, Person


@pytest.fixture
def channel(north):
    return make_channel(
        "instagram", north, app_secret=APP_SECRET, access_token="IGQV-token", ig_user_id="17841400000000000"
    )


def _normalise(channel, name):
    return inbound.normalise(channel, RawPayload(channel=channel, body=load("instagram", name)))


def test_dm_normalises_to_a_private_message(channel):
    [m] = _normalise(channel, "dm_message.json")
    assert (m.author.kind, m.author.value, m.is_public) == ("instagram", "1122334455667788", False)
    assert m.text == "Do you ship to Belgium?"


def test_comment_is_public_and_names_the_handle(channel):
    [m] = _normalise(channel, "comment.json")
    assert m.is_public and m.external_id == "17865799348089039"
    assert m.author.value == "Jane.Doe_" and m.references == ("17887498072083520",)


def test_mention_gives_a_pointer_message(channel):
    [m] = _normalise(channel, "mention.json")
    assert m.external_id == "17894227972186120" and "17918195224117851" in m.text


def test_unknown_field_raises_unknown_event(channel):
    body = b'{"object":"instagram","entry":[{"id":"1","changes":[{"field":"story_insights","value":{}}]}]}'
    with pytest.raises(UnknownEvent):
        inbound.normalise(channel, RawPayload(channel=channel, body=body))


def test_comment_from_a_known_handle_finds_the_person(channel, alice, django_capture_on_commit_callbacks):
    person = Person.objects.create(first_name="Jane", last_name="Doe", owner=alice, team=alice.teams.first())
    Identity.objects.create(person=person, kind="instagram", value="jane.doe_")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_meta(Client(), channel, load("instagram", "comment.json")).status_code == 200
    assert Message.objects.get().person == person


def test_comment_reply_uses_replies_edge(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("instagram", "comment.json"))
    fake = FakeAPI((200, {"id": "17900000000000001"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(
            actor=alice, conversation=Message.objects.get().conversation, text="DM us!"
        )
    reply.refresh_from_db()
    assert fake.calls[0]["url"] == "https://graph.facebook.com/v21.0/17865799348089039/replies"
    assert fake.json() == {"message": "DM us!"}
    assert reply.external_id == "17900000000000001" and reply.delivery_status == Delivery.SENT


def test_dm_reply_uses_the_messages_edge(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("instagram", "dm_message.json"))
    fake = FakeAPI((200, {"recipient_id": "1122334455667788", "message_id": "aWdfout"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        conversation_reply(actor=alice, conversation=Message.objects.get().conversation, text="Yes, we do.")
    assert fake.calls[0]["url"].endswith("/17841400000000000/messages")
    assert fake.json()["recipient"] == {"id": "1122334455667788"}


def test_private_hop_on_a_comment_sends_a_private_reply(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_hop, conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("instagram", "comment.json"))
    conv = Message.objects.get().conversation
    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    fake = FakeAPI((200, {"recipient_id": "1122334455667788", "message_id": "aWdfprivate"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Sorry! Which model is it?")
    reply.refresh_from_db()
    assert fake.calls[0]["url"] == "https://graph.facebook.com/v21.0/17841400000000000/messages"
    assert fake.json() == {
        "recipient": {"comment_id": "17865799348089039"},
        "message": {"text": "Sorry! Which model is it?"},
    }
    assert reply.external_id == "aWdfprivate" and reply.delivery_status == Delivery.SENT
    assert reply.thread_id == "17841400000000000:1122334455667788"
