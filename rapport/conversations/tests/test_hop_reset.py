"""Channel hops meet the customer: their latest channel wins over an agent's hop."""

import pytest

from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.models import Channel, ChannelKind
from rapport.conversations.actions import conversation_hop
from rapport.conversations.ingest import ingest
from rapport.people.models import Identity, Person


@pytest.fixture
def x_channel(north):
    return Channel.objects.create(kind=ChannelKind.X, name="X", team=north)


@pytest.fixture
def email(north):
    return Channel.objects.create(kind=ChannelKind.EMAIL, name="Support", team=north)


@pytest.fixture
def person(north, alice):
    person = Person.objects.create(first_name="Jane", last_name="Doe", owner=alice, team=north)
    Identity.objects.create(person=person, kind="x", value="janedoe")
    Identity.objects.create(person=person, kind="email", value="jane@example.org")
    return person


def mention(ext, *, public=True, kind="x", value="JaneDoe"):
    return CanonicalMessage(kind, ext, Author(kind, value), text=f"message {ext}", is_public=public)


def test_a_new_message_on_x_after_an_email_hop_moves_replies_back_to_x(x_channel, email, person, alice):
    conv = ingest(x_channel, mention("1")).message.conversation
    conversation_hop(actor=alice, conversation=conv, mode="email", address="jane@example.org")
    conv.refresh_from_db()
    assert (conv.reply_channel, conv.reply_mode, conv.reply_to) == (email, "email", "jane@example.org")

    again = ingest(x_channel, mention("2")).message
    conv.refresh_from_db()
    assert again.conversation == conv
    assert (conv.reply_channel, conv.reply_mode, conv.reply_to) == (x_channel, "", "")


def test_a_new_public_mention_after_a_private_hop_is_answered_in_public_again(x_channel, person, alice):
    conv = ingest(x_channel, mention("1")).message.conversation
    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    assert conv.reply_mode == "private"
    ingest(x_channel, mention("2"))
    conv.refresh_from_db()
    assert (conv.reply_channel, conv.reply_mode) == (x_channel, "")


def test_the_customers_email_answer_to_an_email_hop_keeps_email_and_clears_the_hop(
    x_channel, email, person, alice
):
    conv = ingest(x_channel, mention("1")).message.conversation
    conversation_hop(actor=alice, conversation=conv, mode="email", address="jane@example.org")
    ingest(email, mention("<a@example.org>", public=False, kind="email", value="jane@example.org"))
    conv.refresh_from_db()
    # Threaded by person into the open conversation on the email channel the hop linked.
    assert conv.messages.filter(channel=email).count() == 1
    assert (conv.reply_channel, conv.reply_mode, conv.reply_to) == (email, "", "")


def test_a_duplicate_delivery_does_not_undo_a_hop(x_channel, person, alice):
    conv = ingest(x_channel, mention("1")).message.conversation
    conversation_hop(actor=alice, conversation=conv, mode="private")
    assert not ingest(x_channel, mention("1")).created
    conv.refresh_from_db()
    assert conv.reply_mode == "private"
