"""WhatsApp Cloud API: message types, receipts → delivery status, replies."""

import pytest
from django.test import Client

from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import APP_SECRET, FakeAPI, load, make_channel, post_meta
from rapport.channels.connectors.whatsapp import inbound
from rapport.channels.models import ChannelStatus, RawPayload
from rapport.conversations.models import Delivery, Message


@pytest.fixture
def channel(north):
    return make_channel(
        "whatsapp", north, app_secret=APP_SECRET, access_token="EAAW-token", phone_number_id="106540352242922"
    )


def _normalise(channel, name):
    return inbound.normalise(channel, RawPayload(channel=channel, body=load("whatsapp", name)))


def test_text_message_author_is_an_e164_phone(channel):
    [m] = _normalise(channel, "text.json")
    assert (m.author.kind, m.author.value, m.author.display_name) == ("phone", "+447911123456", "Jane Doe")
    assert m.text == "Is my parcel on its way?" and m.thread_id == "wa:106540352242922:447911123456"


def test_image_reply_keeps_caption_media_and_context(channel):
    [m] = _normalise(channel, "image_reply.json")
    assert m.text == "This is what arrived" and m.in_reply_to == "wamid.OUTBOUND1"
    assert m.attachments[0].content_type == "image/jpeg"
    assert m.attachments[0].url == "whatsapp-media:1479537139650973"


def test_location_becomes_a_map_link(channel):
    [m] = _normalise(channel, "location.json")
    assert "Depot" in m.text and "mlat=51.5074" in m.text


def test_statuses_give_no_message_but_are_read_as_receipts(channel):
    assert _normalise(channel, "status_delivered.json") == []
    payload = RawPayload(channel=channel, body=load("whatsapp", "status_failed.json"))
    assert inbound.receipts(payload) == [("wamid.OUTBOUND1", "failed", "131047 Re-engagement message")]


def test_the_same_sender_on_whatsapp_and_sms_is_one_person(channel, django_capture_on_commit_callbacks):
    from rapport.channels.base import Author, CanonicalMessage
    from rapport.conversations.ingest import ingest

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("whatsapp", "text.json"))
    sms = make_channel("sms", channel.team)
    other = ingest(sms, CanonicalMessage("sms", "SM1", Author("phone", "+44 7911 123456"), text="Hi")).message
    assert other.person is not None and other.person == Message.objects.get(channel=channel).person


def _outbound(channel, alice, django_capture_on_commit_callbacks, answer):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("whatsapp", "text.json"))
    fake = FakeAPI(answer)
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(
            actor=alice, conversation=Message.objects.get(channel=channel).conversation, text="Yes, tomorrow."
        )
    reply.refresh_from_db()
    return reply, fake


def test_reply_shape_and_receipts_update_its_delivery_status(
    channel, alice, django_capture_on_commit_callbacks
):
    answer = (
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "447911123456", "wa_id": "447911123456"}],
            "messages": [{"id": "wamid.OUTBOUND1"}],
        },
    )
    reply, fake = _outbound(channel, alice, django_capture_on_commit_callbacks, answer)
    assert fake.calls[0]["url"] == "https://graph.facebook.com/v21.0/106540352242922/messages"
    body = fake.json()
    assert body["to"] == "447911123456" and body["text"]["body"] == "Yes, tomorrow."
    assert body["messaging_product"] == "whatsapp" and body["context"]["message_id"].startswith("wamid.")
    assert reply.external_id == "wamid.OUTBOUND1" and reply.delivery_status == Delivery.SENT
    with django_capture_on_commit_callbacks(execute=True):
        assert post_meta(Client(), channel, load("whatsapp", "status_delivered.json")).status_code == 200
    reply.refresh_from_db()
    assert reply.delivery_status in (Delivery.SENT, getattr(Delivery, "DELIVERED", Delivery.SENT))
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(Client(), channel, load("whatsapp", "status_failed.json"))
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.FAILED and "131047" in reply.delivery_error
    assert Message.objects.filter(channel=channel).count() == 2  # receipts add no message


def test_revoked_token_disables_the_channel(channel, alice, django_capture_on_commit_callbacks):
    reply, _ = _outbound(channel, alice, django_capture_on_commit_callbacks, (401, {"error": {"code": 190}}))
    channel.refresh_from_db()
    assert reply.delivery_status == Delivery.FAILED and channel.status == ChannelStatus.ERROR


def test_throttled_send_stays_queued(channel, alice, django_capture_on_commit_callbacks):
    reply, _ = _outbound(channel, alice, django_capture_on_commit_callbacks, (429, {}, {"Retry-After": "30"}))
    assert reply.delivery_status == Delivery.QUEUED and "retry after 30 s" in reply.delivery_error
