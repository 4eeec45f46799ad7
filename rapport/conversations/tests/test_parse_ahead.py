"""The dedicated ingest worker: parse_batch + store_batch are process_batch in two halves, the
parse-ahead process hands batches over without handing one payload twice, and the worker
stores everything once whether it parses ahead or not."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from rapport.channels.actions import payload_store
from rapport.channels.models import PayloadStatus, RawPayload
from rapport.channels.testing import message_event, webhook_channel
from rapport.conversations import ingest
from rapport.conversations.models import Message


def _store(channel, ext, delivery, **kw):
    body = json.dumps(message_event(ext, **kw)).encode()
    return payload_store(channel=channel, body=body, headers={}, delivery_id=delivery)[0]


@pytest.mark.django_db
def test_parse_then_store_is_process_batch_in_two_halves(north):
    channel = webhook_channel(north)
    _store(channel, "m1", "evt-1")
    _store(channel, "m1", "evt-1-again")  # the same message in another event
    _store(channel, "m2", "evt-2", in_reply_to="m1", value="other@example.org")
    broken = payload_store(channel=channel, body=b"not json", headers={}, delivery_id="evt-3")[0]
    scored = ingest.parse_batch(ingest._pending_payloads(10))
    assert [p.pk for p, _, _ in scored] == sorted(p.pk for p, _, _ in scored)
    result = ingest.store_batch(scored)
    assert (result.created, result.duplicates, result.dead, result.finished) == (2, 1, 1, 4)
    assert Message.objects.count() == 2
    assert RawPayload.objects.get(pk=broken.pk).status == PayloadStatus.DEAD
    assert ingest.process_batch().fetched == 0


@pytest.mark.django_db
def test_a_batch_handed_between_processes_stores_as_the_parsed_one(north):
    """The parse-ahead process hands over the payloads' columns, not model instances, and a
    body only where a connector's hook reads it (a Twilio call's outcome): what the storing
    process rebuilds stores the same messages and the same Call row."""
    import pickle

    from rapport.channels.connectors.meta.testing import make_channel
    from rapport.channels.connectors.twilio.tests.test_twilio import SID, TOKEN, form
    from rapport.conversations.models import Call

    channel = webhook_channel(north)
    _store(channel, "m1", "evt-1")
    _store(channel, "m2", "evt-2", in_reply_to="m1")
    phone = make_channel("phone", north, account_sid=SID, auth_token=TOKEN, from_number="+447723456789")
    call, _ = payload_store(
        channel=phone, body=form("call_status_completed"), headers={"X-Rapport-Event": "call.status"}
    )
    scored = ingest.parse_batch(ingest._pending_payloads(10))
    handed = ingest._unpack(pickle.loads(pickle.dumps(ingest._pack(scored))))

    assert [(p.pk, p.channel_id, p.headers, p.received_at) for p, _, _ in handed] == [
        (p.pk, p.channel_id, p.headers, p.received_at) for p, _, _ in scored
    ]
    assert [(m, r) for _, m, r in handed] == [(m, r) for _, m, r in scored]
    by_pk = {p.pk: p for p, _, _ in handed}
    assert "body" in by_pk[call.pk].__dict__  # the hook reads it
    webhook = next(p for p in by_pk.values() if p.channel_id == channel.pk)
    assert "body" not in webhook.__dict__  # parsed already: not carried across
    assert json.loads(webhook.body_bytes)["id"].startswith("evt-")  # still loads if asked for

    result = ingest.store_batch(handed)
    assert (result.created, result.dead, result.finished) == (3, 0, 3)
    assert sorted(Message.objects.filter(channel=channel).values_list("external_id", flat=True)) == [
        "m1",
        "m2",
    ]
    assert Call.objects.filter(message__channel=phone).count() == 1
    assert set(RawPayload.objects.values_list("status", flat=True)) == {PayloadStatus.PROCESSED}


@pytest.mark.django_db
def test_pending_payloads_leave_out_those_handed_over_and_stay_oldest_first(north):
    channel = webhook_channel(north)
    ids = [_store(channel, f"m{i}", f"evt-{i}").pk for i in range(6)]
    assert [p.pk for p in ingest._pending_payloads(3)] == ids[:3]
    assert [p.pk for p in ingest._pending_payloads(3, skip=set(ids[:2]))] == ids[2:5]
    assert ingest._pending_payloads(3, skip=set(ids)) == []
    # Loaded as the pipeline needs them: the channel's id, the body, the headers decoded.
    first = ingest._pending_payloads(1)[0]
    assert first.channel_id == channel.pk and json.loads(first.body_bytes)["id"] == "evt-m0"
    assert first.headers == {} and first.received_at.tzinfo is not None


@pytest.mark.django_db
def test_inbox_worker_once_without_parse_ahead_drains_the_backlog(north):
    channel = webhook_channel(north)
    for i in range(5):
        _store(channel, f"m{i}", f"evt-{i}")
    out = io.StringIO()
    call_command("inbox_worker", "--once", "--no-parse-ahead", stdout=out)
    assert "5 messages stored" in out.getvalue()
    assert Message.objects.count() == 5
    assert not RawPayload.objects.filter(status=PayloadStatus.RECEIVED).exists()


@pytest.mark.django_db
def test_a_stop_request_is_honoured_after_the_batch_in_hand_even_under_a_backlog(north):
    """SIGTERM sets what keep_going reads: the worker must not drain a backlog first."""
    channel = webhook_channel(north)
    for i in range(5):
        _store(channel, f"m{i}", f"evt-{i}")
    batches = []
    ingest.run_worker(keep_going=lambda: False, parse_ahead=False, on_batch=batches.append, limit=2)
    assert [b.created for b in batches] == [2]
    assert RawPayload.objects.filter(status=PayloadStatus.RECEIVED).count() == 3
    assert ingest.has_pending()


def _shared_database() -> bool:
    # The parse-ahead process is a fork with its own connection: it needs a database another
    # process can open (PostgreSQL, a SQLite file), not the tests' in-memory SQLite.
    name = str(connection.settings_dict.get("NAME") or "")
    return connection.vendor != "sqlite" or not ("memory" in name or name == ":memory:")


@pytest.mark.django_db(transaction=True)
def test_the_worker_parsing_ahead_in_a_second_process_stores_every_message_once():
    from rapport.accounts.models import Team

    if not _shared_database():
        pytest.skip("the parse-ahead process needs a database it can open (PostgreSQL or a file)")
    channel = webhook_channel(Team.objects.create(name="North"))
    for i in range(25):
        _store(channel, f"m{i}", f"evt-{i}")
        _store(channel, f"m{i}", f"evt-{i}-again")
    _store(channel, "m0", "evt-0")  # a retried delivery: the same row
    batches = []

    def keep_going():
        return RawPayload.objects.filter(status=PayloadStatus.RECEIVED).exists()

    ingest.run_worker(keep_going=keep_going, parse_ahead=True, pause=0.05, on_batch=batches.append)
    assert Message.objects.count() == 25
    assert sorted(Message.objects.values_list("external_id", flat=True)) == sorted(f"m{i}" for i in range(25))
    assert sum(b.created for b in batches) == 25 and sum(b.duplicates for b in batches) == 25
    assert set(RawPayload.objects.values_list("status", flat=True)) == {PayloadStatus.PROCESSED}


@pytest.mark.django_db(transaction=True)
def test_the_parse_ahead_process_stops_with_the_worker():
    if not _shared_database():
        pytest.skip("the parse-ahead process needs a database it can open (PostgreSQL or a file)")
    with ingest.ParseAhead(pause=0.05) as ahead:
        assert ahead.process.is_alive()
        assert ahead.next(timeout=0.1) is None  # nothing pending
    assert not ahead.process.is_alive()


@pytest.mark.django_db
def test_the_storing_connection_leaves_checkpoints_to_the_parsing_process():
    """While a parse-ahead process runs, the storing connection's commits do not checkpoint
    SQLite's WAL (the parsing process does, passively, after each hand-over); afterwards the
    connection checkpoints as before. On PostgreSQL both are no-ops."""
    if connection.vendor != "sqlite":
        with ingest._no_autocheckpoint():
            ingest._checkpoint()
        return

    def limit():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            return cursor.fetchone()[0]

    before = limit()
    assert before > 0
    with ingest._no_autocheckpoint():
        assert limit() == 0
        ingest._checkpoint()
    assert limit() == before


@pytest.mark.django_db(transaction=True)
def test_the_parse_ahead_process_does_not_inherit_the_workers_stop_handler():
    """inbox_worker turns SIGTERM into a flag for its own loop; the parsing process must not
    keep that handler (it would swallow the SIGTERM that close() falls back to)."""
    import signal

    if not _shared_database():
        pytest.skip("the parse-ahead process needs a database it can open (PostgreSQL or a file)")
    stopping = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        with ingest.ParseAhead(pause=0.05) as ahead:
            assert ahead.next(timeout=1.0) is None  # nothing pending; the process is running
            ahead.process.terminate()
            ahead.process.join(timeout=5)
            assert ahead.process.exitcode == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopping == []
