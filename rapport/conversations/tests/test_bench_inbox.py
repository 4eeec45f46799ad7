"""The bulk inbox seed behind `rapport bench inbox`, at a small N."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from rapport.accounts.models import User
from rapport.bench.seed import DEMO_PASSWORD, SeedError, seed
from rapport.conversations.benchmark import seed_inbox_bulk
from rapport.conversations.models import Conversation, Message
from rapport.conversations.selectors import conversations_visible

TODAY = dt.date(2026, 3, 2)


@pytest.fixture
def people(db):
    seed(people=60, orgs=5, deals=10, activities=0, seed=3, users=True, today=TODAY)


def _snapshot() -> list[tuple]:
    first = Conversation.objects.order_by("id").values_list("id", flat=True).first() or 0
    convs = [
        (c.pk - first, c.subject, c.status, c.priority, c.assignee_id, c.person_id, c.last_message_at)
        for c in Conversation.objects.order_by("id")
    ]
    msgs = [
        (m.conversation_id - first, m.direction, m.person_id, m.text, m.received_at)
        for m in Message.objects.order_by("id")
    ]
    return convs + msgs


def test_seeds_exactly_the_messages_asked_for_in_about_ten_per_conversation(people):
    done = seed_inbox_bulk(messages=1234, seed=5, today=TODAY)

    assert done["messages"] == Message.objects.count() == 1234
    assert done["conversations"] == Conversation.objects.count() == 123
    sizes = {c.messages.count() for c in Conversation.objects.all()}
    assert sizes <= {10, 11}
    # Every conversation has its channel, a person and a reply channel, as ingest would leave it.
    assert not Conversation.objects.filter(channels__isnull=True).exists()
    assert not Conversation.objects.filter(person__isnull=True).exists()
    # Customer and agent take turns, the customer first: 119 × 5 + 4 × 6 (the four of eleven).
    assert Message.objects.filter(direction="inbound").count() == 619


def test_same_seed_gives_the_same_inbox(people):
    seed_inbox_bulk(messages=500, seed=9, today=TODAY)
    first = _snapshot()
    Conversation.objects.all().delete()
    seed_inbox_bulk(messages=500, seed=9, today=TODAY)
    assert _snapshot() == first
    Conversation.objects.all().delete()
    seed_inbox_bulk(messages=500, seed=10, today=TODAY)
    assert _snapshot() != first


def test_the_demo_agent_sees_every_seeded_conversation_and_has_some_of_her_own(people):
    seed_inbox_bulk(messages=800, seed=1, today=TODAY)
    maria = User.objects.get(username="maria")
    assert conversations_visible(maria).count() == 80
    mine = Conversation.objects.filter(assignee=maria)
    assert 0 < mine.count() < 80
    # The newest are mostly open, the year-old ones mostly closed: the inbox list has work.
    newest = list(Conversation.objects.order_by("-last_message_at")[:5].values_list("status", flat=True))
    assert any(s in ("new", "open", "waiting") for s in newest)

    client = Client()
    assert client.login(username="maria", password=DEMO_PASSWORD)
    assert client.get("/inbox/?view=all").status_code == 200
    conv = Conversation.objects.order_by("id").first()
    response = client.get(f"/inbox/{conv.pk}/")
    assert response.status_code == 200
    assert conv.subject in response.content.decode()


def test_needs_people_from_a_seed_run(db):
    with pytest.raises(SeedError, match="no people"):
        seed_inbox_bulk(messages=100)


def test_bench_inbox_rejects_bad_counts(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("bench", "inbox", "--messages", "0")
    with pytest.raises(CommandError, match="concurrency"):
        call_command("bench", "inbox", "--messages", "10", "--concurrency", "x")
