"""Facebook Page + Messenger: fixtures normalise, signatures, duplicates, Graph replies."""

import json

import pytest
from django.test import Client

from rapport.channels.connectors.facebook import inbound
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import APP_SECRET, FakeAPI, load, make_channel, post_meta
from rapport.channels.models import ChannelStatus, PayloadStatus, RawPayload
from rapport.conversations.models import Delivery, Message


@pytest.fixture
def channel(north):
    return make_channel(
        "facebook",
        north,
        app_secret=APP_SECRET,
        verify_token="v",
        page_access_token="EAAG-token",
        page_id="107310123456789",
    )


def _normalise(channel, name):
    return inbound.normalise(channel, RawPayload(channel=channel, body=load("facebook", name)))


def test_messenger_message_normalises_to_a_private_dm(channel):
    [m] = _normalise(channel, "messenger_message.json")
    assert m.external_id.startswith("m_AG5Hz2Uq7")
    assert (m.author.kind, m.author.value) == ("facebook", "6543210987654321")
    assert m.text.startswith("Hi, my order #4471")
    assert m.thread_id == "107310123456789:6543210987654321"
    assert not m.is_public
    assert m.attachments[0].url.endswith("photo.jpg")
    assert m.sent_at.year == 2024


def test_postback_normalises_to_the_button_title(channel):
    [m] = _normalise(channel, "messenger_postback.json")
    assert m.text == "[Button] Talk to a human" and m.external_id == "m_postback_1"


def test_echo_and_read_receipt_give_no_message(channel):
    assert _normalise(channel, "messenger_echo.json") == []


def test_feed_comment_is_public_and_replies_to_the_post(channel):
    [m] = _normalise(channel, "feed_comment.json")
    assert m.is_public and m.external_id == "987654321098765_1122334455667788"
    assert m.parent_id == "107310123456789_987654321098765"
    assert m.author.display_name == "Jane Doe"


def test_unknown_change_field_is_a_dead_letter(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_meta(Client(), channel, load("facebook", "unknown_field.json")).status_code == 200
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.DEAD and "ratings" in payload.error


def test_signed_delivery_becomes_one_message_and_a_retry_adds_nothing(
    channel, django_capture_on_commit_callbacks
):
    body = load("facebook", "messenger_message.json")
    with django_capture_on_commit_callbacks(execute=True):
        first = post_meta(Client(), channel, body)
        again = post_meta(Client(), channel, body)
    assert first.status_code == 200 and again.json()["duplicate"] is True
    assert RawPayload.objects.count() == 1 and Message.objects.count() == 1
    assert Message.objects.get().person.identities.get().value == "6543210987654321"


def test_bad_signature_is_403_and_stores_nothing(channel):
    body = load("facebook", "messenger_message.json")
    assert post_meta(Client(), channel, body, secret="wrong").status_code == 403
    response = Client().post(f"/hooks/facebook/{channel.pk}/", data=body, content_type="application/json")
    assert response.status_code == 403
    assert not RawPayload.objects.exists()


def _conversation(channel, fixture, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("facebook", fixture))
    return Message.objects.get().conversation


def test_messenger_reply_goes_to_the_send_api(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    conv = _conversation(channel, "messenger_message.json", django_capture_on_commit_callbacks)
    fake = FakeAPI((200, {"recipient_id": "6543210987654321", "message_id": "m_out_1"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Sorry! A new one is on its way.")
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.SENT and reply.external_id == "m_out_1"
    call = fake.calls[0]
    assert call["url"] == "https://graph.facebook.com/v21.0/107310123456789/messages"
    assert call["headers"]["Authorization"] == "Bearer EAAG-token"
    assert fake.json() == {
        "recipient": {"id": "6543210987654321"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Sorry! A new one is on its way."},
    }


def test_comment_reply_goes_to_the_comment(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    conv = _conversation(channel, "feed_comment.json", django_capture_on_commit_callbacks)
    fake = FakeAPI((200, {"id": "987654321098765_999"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        conversation_reply(actor=alice, conversation=conv, text="We've sent you a message.")
    assert fake.calls[0]["url"].endswith("/987654321098765_1122334455667788/comments")
    assert json.loads(fake.calls[0]["body"]) == {"message": "We've sent you a message."}


@pytest.mark.parametrize(
    "answer,status,channel_status",
    [
        ((401, {"error": {"message": "Invalid token", "code": 190}}), Delivery.FAILED, ChannelStatus.ERROR),
        (
            (400, {"error": {"message": "Session has expired", "type": "OAuthException", "code": 190}}),
            Delivery.FAILED,
            ChannelStatus.ERROR,
        ),
        ((429, {"error": {"code": 4}}, {"Retry-After": "60"}), Delivery.QUEUED, ChannelStatus.ACTIVE),
        ((500, {}), Delivery.QUEUED, ChannelStatus.ACTIVE),
    ],
)
def test_revoked_token_disables_the_channel_and_throttling_is_retried(
    channel, alice, answer, status, channel_status, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    conv = _conversation(channel, "messenger_message.json", django_capture_on_commit_callbacks)
    with http.use_transport(FakeAPI(answer)), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Hello")
    reply.refresh_from_db()
    channel.refresh_from_db()
    assert reply.delivery_status == status
    assert channel.status == channel_status


def _hop_private(conv, alice):
    from rapport.conversations.actions import conversation_hop

    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    return conv


def test_private_hop_on_a_comment_sends_a_private_reply_then_messenger(
    channel, alice, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    conv = _hop_private(
        _conversation(channel, "feed_comment.json", django_capture_on_commit_callbacks), alice
    )
    fake = FakeAPI(
        (200, {"recipient_id": "6543210987654321", "message_id": "m_private_1"}),
        (200, {"recipient_id": "6543210987654321", "message_id": "m_private_2"}),
    )
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        first = conversation_reply(actor=alice, conversation=conv, text="Sorry! What is your order number?")
        second = conversation_reply(actor=alice, conversation=conv, text="And your postcode?")
    first.refresh_from_db()
    second.refresh_from_db()
    # Meta's private reply: addressed to the comment, from the Page's messages edge.
    assert fake.calls[0]["url"] == "https://graph.facebook.com/v21.0/107310123456789/messages"
    assert fake.json(0) == {
        "recipient": {"comment_id": "987654321098765_1122334455667788"},
        "message": {"text": "Sorry! What is your order number?"},
    }
    assert first.external_id == "m_private_1" and first.delivery_status == Delivery.SENT
    assert first.thread_id == "107310123456789:6543210987654321"
    # A comment takes one private reply: the next one goes to the PSID Meta gave back.
    assert fake.calls[1]["url"] == "https://graph.facebook.com/v21.0/107310123456789/messages"
    assert fake.json(1)["recipient"] == {"id": "6543210987654321"}
    assert second.delivery_status == Delivery.SENT
    assert not any(c["url"].endswith("/comments") for c in fake.calls)


def test_the_customers_messenger_answer_to_a_private_reply_threads_in(
    channel, alice, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    conv = _hop_private(
        _conversation(channel, "feed_comment.json", django_capture_on_commit_callbacks), alice
    )
    fake = FakeAPI((200, {"recipient_id": "6543210987654321", "message_id": "m_private_1"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        conversation_reply(actor=alice, conversation=conv, text="What is your order number?")
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("facebook", "messenger_message.json"))
    answer = Message.objects.get(direction="inbound", is_public=False)
    assert answer.conversation == conv
    conv.refresh_from_db()
    assert conv.reply_mode == ""  # they wrote in Messenger: answered there from now on


def test_private_hop_with_a_known_psid_uses_messenger(channel, alice, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("facebook", "messenger_message.json"))
    conv = Message.objects.get().conversation
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("facebook", "feed_comment.json"))
    assert Message.objects.filter(conversation=conv).count() == 1  # a different person: new conversation
    # Same conversation by construction: the comment joins the Messenger one.
    Message.objects.filter(is_public=True).update(conversation=conv)
    conv = _hop_private(conv, alice)
    fake = FakeAPI((200, {"recipient_id": "6543210987654321", "message_id": "m_out"}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        conversation_reply(actor=alice, conversation=conv, text="Let's continue here.")
    assert fake.json()["recipient"] == {"id": "6543210987654321"}
    assert fake.json()["messaging_type"] == "RESPONSE"
