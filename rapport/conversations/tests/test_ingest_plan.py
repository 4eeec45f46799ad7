"""A batch worked out before taking SQLite's write lock (ingest._plan) stores exactly what the
classic path, every read under the lock, stores; and anything that changes what the plan read
in between makes the batch fall back to the classic path."""

import json

import pytest
from django.db import connection, transaction

from rapport.channels.actions import payload_store
from rapport.channels.models import PayloadStatus, RawPayload
from rapport.channels.testing import message_event, webhook_channel
from rapport.conversations import ingest
from rapport.conversations.ingest import process_batch
from rapport.conversations.models import (
    AssignMode,
    Conversation,
    Direction,
    Message,
    Notification,
    RoutingRule,
    Status,
)
from rapport.people.actions import organisation_create, person_create
from rapport.people.models import Identity, Person, Tag

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="plans are made on SQLite only"),
]


def _deliver(channel, ext, **kw):
    body = json.dumps(message_event(ext, **kw)).encode()
    return payload_store(channel=channel, body=body, headers={}, delivery_id=f"evt-{ext}")[0]


def _scene(north, alice, bob, carol):
    """Known and unknown senders, an organisation by domain, replies, threads, a duplicate, an
    unreadable payload, rules that assign (fewest open), set priority and tag."""
    organisation_create(actor=bob, name="Acme", domains=["acme.test"])
    person_create(actor=alice, first_name="Kim", last_name="Known", identities=[("email", "kim@example.org")])
    Tag.objects.create(name="urgent")
    RoutingRule.objects.create(
        name="Urgent", position=1, stop=False, urgencies=["high"], set_priority="high", add_tags=["urgent"]
    )
    RoutingRule.objects.create(
        name="Desk", position=2, words=["refund"], assign_mode=AssignMode.FEWEST_OPEN, assign_team=north
    )
    Conversation.objects.create(subject="old", assignee=alice, status=Status.OPEN, team=north)
    channel = webhook_channel(north)
    _deliver(channel, "p1", value="kim@example.org", text="Hello, where is my order?")
    _deliver(channel, "p2", value="ann@acme.test", text="I want a refund now, this is unacceptable!")
    _deliver(channel, "p3", value="kim@example.org", text="Any news?", in_reply_to="p1")
    _deliver(channel, "p4", value="zed@example.net", text="Thread start", thread_id="t-9")
    _deliver(channel, "p5", value="zed@example.net", text="Thread again", thread_id="t-9")
    body = json.dumps(message_event("p2", value="ann@acme.test", text="I want a refund now!")).encode()
    payload_store(channel=channel, body=body, headers={}, delivery_id="evt-p2-again")  # same message
    payload_store(channel=channel, body=b"not json", headers={}, delivery_id="evt-broken")
    return channel


def _snapshot():
    convs = [
        (
            c.pk,
            c.subject,
            c.status,
            c.priority,
            c.assignee_id,
            c.team_id,
            c.person_id,
            c.organisation_id,
            c.reply_channel_id,
            c.sentiment,
            c.urgency,
            c.sla_state,
            c.version,
            sorted(c.tags.values_list("name", flat=True)),
            sorted(c.channels.values_list("pk", flat=True)),
        )
        for c in Conversation.objects.order_by("pk")
    ]
    messages = list(
        Message.objects.order_by("pk").values_list(
            "pk", "channel_id", "external_id", "conversation_id", "person_id", "sentiment", "raw_payload_id"
        )
    )
    people = list(
        Person.objects.order_by("pk").values_list(
            "pk", "first_name", "last_name", "owner_id", "team_id", "organisation_id", "needs_review"
        )
    )
    identities = list(Identity.objects.order_by("pk").values_list("person_id", "kind", "value"))
    notices = list(
        Notification.objects.order_by("pk").values_list("user_id", "conversation_id", "kind", "text")
    )
    payloads = list(RawPayload.objects.order_by("pk").values_list("pk", "status", "attempts"))
    return convs, messages, people, identities, notices, payloads


def _outcome(monkeypatch, planned):
    monkeypatch.setattr(ingest, "PLAN_OUTSIDE_LOCK", planned)
    with transaction.atomic():
        result = process_batch()
        snapshot = _snapshot()
        transaction.set_rollback(True)
    return result, snapshot


def test_a_planned_batch_stores_what_the_classic_path_stores(monkeypatch, north, alice, bob, carol):
    _scene(north, alice, bob, carol)
    classic, expected = _outcome(monkeypatch, planned=False)
    planned, got = _outcome(monkeypatch, planned=True)
    assert not classic.planned and planned.planned
    assert (planned.created, planned.duplicates, planned.dead) == (classic.created, classic.duplicates, 1)
    assert got == expected
    convs, messages, *_ = got
    assert len(messages) == 5 and len(convs) == 4  # old + kim + ann + zed (threaded, replied)


def test_rows_kept_while_planning_are_what_reading_again_gives(north, alice, bob, carol):
    """The batch's plain-SQL reads hand their rows to the plan's read log as they are read
    instead of being run a second time: those rows, and the order of the log, are exactly
    what running every recorded statement again in the same state gives."""
    _scene(north, alice, bob, carol)
    scored = ingest.parse_batch(ingest._pending_payloads(100))
    plan = ingest._plan(scored)
    assert plan is not None
    log = plan.reads
    assert log.captured, "the batch's own reads were not captured"
    assert set(log.captured) < set(log.queries)  # the ORM's reads are run again instead
    assert log.rows == log._run()
    assert log.unchanged()


def test_a_plan_captures_only_its_own_threads_reads():
    """Threads of one process may plan side by side: rows one reads in its snapshot must not
    become the recorded rows of another's plan."""
    import threading

    mine = ingest._ReadLog()
    ingest._capturing.log = mine
    try:

        def elsewhere():
            try:
                ingest._fetch("SELECT 1", [])
            finally:
                connection.close()  # the thread's own connection

        other = threading.Thread(target=elsewhere)
        other.start()
        other.join()
        assert mine.captured == {}
        ingest._fetch("SELECT 2", [])
        assert list(mine.captured) == [("SELECT 2", ())]
    finally:
        ingest._capturing.log = None


def test_ids_given_by_a_plan_are_the_ones_the_database_would_give(monkeypatch, north, alice, bob, carol):
    _scene(north, alice, bob, carol)
    assert process_batch().planned
    last_person = Person.objects.order_by("-pk").first()
    last_conversation = Conversation.objects.order_by("-pk").first()
    later = person_create(actor=alice, first_name="Later", last_name="One")
    assert later.pk == last_person.pk + 1
    assert Conversation.objects.create(subject="later").pk == last_conversation.pk + 1


def _change_after_planning(monkeypatch, change):
    real = ingest._plan

    def plan_then_change(scored):
        plan = real(scored)
        assert plan is not None
        change()
        return plan

    monkeypatch.setattr(ingest, "_plan", plan_then_change)


def test_a_conversation_closed_after_planning_is_not_reopened_by_the_plan(monkeypatch, north):
    channel = webhook_channel(north)
    _deliver(channel, "c1", value="kim@example.org")
    process_batch()
    conv = Conversation.objects.get()
    _deliver(channel, "c2", value="kim@example.org", text="Me again")
    _change_after_planning(
        monkeypatch,
        lambda: Conversation.objects.filter(pk=conv.pk).update(
            status=Status.CLOSED, version=conv.version + 1
        ),
    )
    result = process_batch()
    assert result.created == 1 and not result.planned
    conv.refresh_from_db()
    assert conv.status == Status.CLOSED and conv.messages.count() == 1
    assert Conversation.objects.count() == 2  # the classic path saw it closed: a new one


def test_a_message_stored_by_another_worker_after_planning_is_a_duplicate(monkeypatch, north):
    channel = webhook_channel(north)
    payload = _deliver(channel, "d1", value="kim@example.org")

    def other_worker():
        from rapport.channels.base import Author, CanonicalMessage

        ingest.ingest(channel, CanonicalMessage("webhook", "d1", Author("email", "kim@example.org")))

    _change_after_planning(monkeypatch, other_worker)
    result = process_batch()
    assert (result.created, result.duplicates, result.planned) == (0, 1, False)
    assert Message.objects.count() == 1 and Person.objects.count() == 1
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.PROCESSED


def test_a_person_created_after_planning_receives_the_message(monkeypatch, north, alice):
    channel = webhook_channel(north)
    _deliver(channel, "n1", value="new@example.org")
    made = []
    _change_after_planning(
        monkeypatch,
        lambda: made.append(
            person_create(
                actor=alice, first_name="New", last_name="Person", identities=[("email", "new@example.org")]
            )
        ),
    )
    result = process_batch()
    assert result.created == 1 and not result.planned
    assert Person.objects.count() == 1 and Message.objects.get().person == made[0]


def test_a_payload_claimed_by_another_worker_after_planning_is_left_to_it(monkeypatch, north):
    channel = webhook_channel(north)
    _deliver(channel, "w1", value="a@example.org")
    taken = _deliver(channel, "w2", value="b@example.org")
    _change_after_planning(
        monkeypatch, lambda: RawPayload.objects.filter(pk=taken.pk).update(status=PayloadStatus.PROCESSED)
    )
    result = process_batch()
    assert result.created == 1 and not result.planned
    assert list(Message.objects.values_list("external_id", flat=True)) == ["w1"]


def test_planning_never_writes_and_leaves_writers_to_the_classic_path(monkeypatch, north):
    RoutingRule.objects.create(name="Hello", auto_reply="Thanks, we got it.")
    channel = webhook_channel(north)
    _deliver(channel, "a1", value="a@example.org")
    ingest.system_user()  # made once, before any plan
    statements = []

    def spy(execute, sql, params, many, context):
        done = execute(sql, params, many, context)  # the plan's guard refuses writes in here
        statements.append(sql.split()[0].upper())
        return done

    real = ingest._plan

    def watched(scored):
        with connection.execute_wrapper(spy):
            return real(scored)

    monkeypatch.setattr(ingest, "_plan", watched)
    result = process_batch()
    assert set(statements) <= {"SELECT"}  # the auto-reply's insert was refused, not run
    assert result.created == 1 and not result.planned
    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.text == "Thanks, we got it." and reply.conversation.messages.count() == 2
