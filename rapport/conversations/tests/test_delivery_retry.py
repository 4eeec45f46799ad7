"""A platform's Retry-After is honoured when it asks for a longer wait than our backoff."""

import pytest

from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations import actions
from rapport.conversations.ingest import ingest


@pytest.fixture
def message(north):
    channel = webhook_channel(north)
    conv = ingest(
        channel, CanonicalMessage("webhook", "m1", Author("email", "jane@example.org"), text="Hi")
    ).message.conversation
    return conv.messages.get(), channel


@pytest.mark.parametrize(("retry_after", "expected"), [(0, actions.BACKOFF_SECONDS[0]), (900, 900)])
def test_transient_failure_waits_for_the_longer_of_backoff_and_retry_after(
    message, monkeypatch, retry_after, expected
):
    msg, channel = message
    waits = []
    monkeypatch.setattr(actions, "_retry_later", lambda message_id, seconds: waits.append(seconds))
    assert (
        actions._delivery_failed(msg, channel, 1, "429 Too Many Requests", False, retry_after=retry_after)
        == "retrying"
    )
    assert waits == [expected]


def test_a_reply_on_a_demo_channel_says_it_was_not_sent_and_keeps_the_channel(message):
    from rapport.channels.models import ChannelStatus
    from rapport.conversations.models import Delivery, Direction, Message

    msg, channel = message
    channel.settings = {**(channel.settings or {}), "demo": True}
    channel.save()
    reply = Message.objects.create(
        conversation=msg.conversation,
        direction=Direction.OUTBOUND,
        channel=channel,
        text="On it",
        delivery_status=Delivery.QUEUED,
    )
    assert actions.message_deliver(message_id=reply.pk) == "failed"
    reply.refresh_from_db()
    channel.refresh_from_db()
    assert reply.delivery_status == Delivery.FAILED and "demo channel" in reply.delivery_error
    assert channel.status == ChannelStatus.ACTIVE
