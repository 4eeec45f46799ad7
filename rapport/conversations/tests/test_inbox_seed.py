"""The set-based seed behind `rapport bench inbox` (SQLite and PostgreSQL), and the bench's
guards around its scratch database."""

import datetime as dt
from collections import Counter

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from rapport.accounts.models import User
from rapport.bench.seed import DEMO_PASSWORD, SeedError, seed
from rapport.conversations.inbox_bench import Scratch
from rapport.conversations.inbox_seed import seed_inbox
from rapport.conversations.models import Conversation, Message
from rapport.conversations.selectors import conversations_visible

TODAY = dt.date(2026, 3, 2)


@pytest.fixture
def people(db):
    seed(people=60, orgs=5, deals=10, activities=0, seed=3, users=True, today=TODAY)


def _snapshot() -> list[tuple]:
    first = Conversation.objects.order_by("id").values_list("id", flat=True).first() or 0
    convs = [
        (
            c.pk - first,
            c.subject,
            c.status,
            c.priority,
            c.assignee_id,
            c.person_id,
            c.sla_state,
            c.last_message_at,
        )
        for c in Conversation.objects.order_by("id")
    ]
    msgs = [
        (m.conversation_id - first, m.direction, m.person_id, m.text, m.received_at)
        for m in Message.objects.order_by("id")
    ]
    return convs + msgs


def test_seeds_exactly_the_messages_asked_for_as_ingest_would_leave_them(people):
    done = seed_inbox(messages=1234, seed=5, today=TODAY)

    assert done["messages"] == Message.objects.count() == 1234
    assert done["conversations"] == Conversation.objects.count() == 123
    assert {c.messages.count() for c in Conversation.objects.all()} <= {10, 11}
    assert not Conversation.objects.filter(channels__isnull=True).exists()
    assert not Conversation.objects.filter(person__isnull=True).exists()
    assert not Conversation.objects.exclude(reply_channel__isnull=False).exists()
    # Customer and agent take turns, the customer first: 119 × 5 + 4 × 6.
    assert Message.objects.filter(direction="inbound").count() == 619
    for conv in Conversation.objects.all()[:20]:
        msgs = list(conv.messages.order_by("id"))
        assert [m.received_at for m in msgs] == sorted(m.received_at for m in msgs)
        # Whole seconds between messages: the last lands within a second per message of the end.
        assert dt.timedelta(0) <= conv.last_message_at - msgs[-1].received_at < dt.timedelta(seconds=11)
        assert msgs[0].received_at == conv.created_at
        assert msgs[0].subject == conv.subject and msgs[0].text.startswith(conv.subject)
        assert all(m.channel_id == conv.reply_channel_id for m in msgs)
    # New conversations are nobody's yet; open ones carry SLA clocks, closed ones none.
    assert not Conversation.objects.filter(status="new", assignee__isnull=False).exists()
    assert (
        not Conversation.objects.filter(status__in=["resolved", "closed"]).exclude(sla_state="none").exists()
    )
    external = Message.objects.values_list("external_id", flat=True)
    assert len(set(external)) == 1234


def test_same_seed_gives_the_same_inbox_and_a_second_run_appends(people):
    seed_inbox(messages=500, seed=9, today=TODAY)
    first = _snapshot()
    Conversation.objects.all().delete()
    seed_inbox(messages=500, seed=9, today=TODAY)
    assert _snapshot() == first
    seed_inbox(messages=500, seed=10, today=TODAY)
    assert Message.objects.count() == 1000 and Conversation.objects.count() == 100


def test_values_are_spread_like_a_working_inbox(people):
    seed_inbox(messages=20_000, seed=1, today=TODAY)
    statuses = Counter(Conversation.objects.values_list("status", flat=True))
    assert set(statuses) == {"new", "open", "waiting", "resolved", "closed"}
    assert statuses["resolved"] + statuses["closed"] > statuses["open"]
    newest = Counter(Conversation.objects.order_by("-last_message_at").values_list("status", flat=True)[:40])
    assert newest["new"] + newest["open"] + newest["waiting"] > 25
    people_used = Conversation.objects.values("person").distinct().count()
    assert people_used > 40  # of 60
    assert Conversation.objects.filter(sla_state__in=["at_risk", "breached"]).exists()


def test_the_demo_agent_sees_her_team_and_her_own_and_the_pages_render(people):
    seed_inbox(messages=2000, seed=1, today=TODAY)
    maria = User.objects.get(username="maria")
    visible = conversations_visible(maria)
    assert 0 < visible.count() < 200  # one channel of five belongs to South
    assert visible.filter(assignee=maria).exists()
    client = Client()
    assert client.login(username="maria", password=DEMO_PASSWORD)
    for view in ("mine", "unassigned", "teams", "all", "sla"):
        assert client.get(f"/inbox/?view={view}").status_code == 200
    conv = visible.order_by("id").first()
    response = client.get(f"/inbox/{conv.pk}/")
    assert response.status_code == 200
    assert conv.subject in response.content.decode()


def test_needs_people_from_a_seed_run(db):
    with pytest.raises(SeedError, match="no people"):
        seed_inbox(messages=100)


def test_scratch_database_guards(db):
    with pytest.raises(CommandError, match="must start with"):
        Scratch({"database_url": "postgres://postgres@127.0.0.1:5432/postgres", "messages": 1})
    with pytest.raises(CommandError, match="must start with"):
        Scratch({"database_url": "postgres://postgres@127.0.0.1:5432/rapport_bench;drop", "messages": 1})
    with pytest.raises(CommandError, match="postgres://"):
        Scratch({"database_url": "mysql://x/rapport_bench", "messages": 1})
    app_db = settings.DATABASES["default"]["NAME"]
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and str(app_db).startswith("/"):
        with pytest.raises(CommandError, match="own database"):
            Scratch({"db": str(app_db), "messages": 1})
    pg = Scratch({"database_url": "postgres://postgres@127.0.0.1:5432/rapport_bench_x", "messages": 1})
    assert pg.pg and pg.name == "rapport_bench_x"


def test_bench_inbox_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("bench", "inbox", "--messages", "0")
    with pytest.raises(CommandError, match="concurrency"):
        call_command("bench", "inbox", "--messages", "10", "--concurrency", "x")
    with pytest.raises(CommandError, match="must start with"):
        call_command("bench", "inbox", "--messages", "10", "--database-url", "postgres://u@127.0.0.1/test")
