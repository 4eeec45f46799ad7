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
