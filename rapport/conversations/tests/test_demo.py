"""The demo inbox: every channel kind, angry and channel-hopping conversations, the same
conversations for the same seed, and a second run adds nothing."""

import pytest

from rapport.bench.seed import seed
from rapport.channels.models import Channel, ChannelKind
from rapport.conversations.demo import seed_inbox
from rapport.conversations.models import Call, Conversation, Message, Notification, Status

pytestmark = pytest.mark.django_db


def _signature():
    return [
        (
            c.subject,
            c.person_id,
            c.status,
            c.priority,
            c.sentiment,
            sorted(ch.kind for ch in c.channels.all()),
        )
        for c in Conversation.objects.order_by("created_at", "id").prefetch_related("channels")
    ]


def test_demo_inbox_has_every_channel_angry_and_hopping_conversations():
    seed(people=80, seed=7, users=True)
    report = seed_inbox(conversations=40, seed=3)
    assert report["created"] == 40 and Conversation.objects.count() == 40
    assert set(Channel.objects.values_list("kind", flat=True)) >= {
        ChannelKind.EMAIL,
        ChannelKind.CHAT,
        ChannelKind.X,
        ChannelKind.MASTODON,
        ChannelKind.FACEBOOK,
        ChannelKind.SMS,
        ChannelKind.PHONE,
    }
    assert all(c.status == "active" and c.team is not None for c in Channel.objects.all())
    assert Conversation.objects.filter(sentiment="negative").exists()
    assert Conversation.objects.filter(status=Status.RESOLVED).exists()
    hop = Conversation.objects.filter(channels__kind=ChannelKind.X).filter(channels__kind=ChannelKind.PHONE)
    assert hop.exists()
    conv = hop.first()
    assert Message.objects.filter(conversation=conv, is_public=True).exists()  # the public mention
    assert Call.objects.filter(conversation=conv).exists()
    assert Conversation.objects.filter(assignee__username__in=["maria", "sam", "sven", "mona"]).count() >= 20


def test_demo_inbox_is_deterministic_per_seed_and_a_second_run_adds_nothing():
    seed(people=80, seed=7, users=True)
    seed_inbox(conversations=30, seed=5)
    first = _signature()
    messages = Message.objects.count()
    assert seed_inbox(conversations=30, seed=5)["already_seeded"] is True
    assert Message.objects.count() == messages and _signature() == first
    Notification.objects.all().delete()
    Conversation.objects.all().delete()
    seed_inbox(conversations=30, seed=5)
    assert _signature() == first
    assert Message.objects.count() == messages
