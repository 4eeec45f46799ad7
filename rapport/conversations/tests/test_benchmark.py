"""The ingest benchmark on a small N, and the batch pipeline's exactly-once guarantees."""

import io
import json

import pytest

from rapport.channels.actions import payload_store
from rapport.channels.models import PayloadStatus, RawPayload
from rapport.channels.testing import message_event, webhook_channel
from rapport.conversations import benchmark
from rapport.conversations import ingest as ingest_module
from rapport.conversations.ingest import process_batch
from rapport.conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


def test_small_ingest_benchmark_loses_and_duplicates_nothing_and_ends_with_json():
    out = io.StringIO()
    figures = benchmark.run(messages=60, stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(figures))
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
    assert figures["messages"] == 60 and figures["people"] == 6 and figures["deliveries"] == 120
    assert figures["payloads_pending"] == 0 and figures["payloads_dead"] == 0
    assert figures["messages_per_s"] > 0 and "p95_lag_ms" in figures
    assert Message.objects.filter(external_id__startswith="bench-").count() == 60


def test_benchmark_refuses_a_database_with_real_messages(north):
    from rapport.channels.base import Author, CanonicalMessage
    from rapport.conversations.ingest import ingest

    ingest(webhook_channel(north), CanonicalMessage("webhook", "real-1", Author("email", "a@example.org")))
    with pytest.raises(SystemExit):
        benchmark.run(messages=10, stdout=io.StringIO())


def _store(channel, ext, delivery, **kw):
    body = json.dumps(message_event(ext, **kw)).encode()
    return payload_store(channel=channel, body=body, headers={}, delivery_id=delivery)[0]


def test_a_batch_stores_a_message_delivered_in_two_events_once(north):
    channel = webhook_channel(north)
    _store(channel, "m1", "evt-1")
    _store(channel, "m1", "evt-1-again")
    _store(channel, "m2", "evt-2", in_reply_to="m1", value="other@example.org")
    result = process_batch()
    assert (result.created, result.duplicates, result.finished) == (2, 1, 3)
    assert Message.objects.count() == 2 and Conversation.objects.count() == 1  # the reply threads in-batch
    assert set(RawPayload.objects.values_list("status", flat=True)) == {PayloadStatus.PROCESSED}
    assert process_batch().fetched == 0


def test_a_crash_mid_batch_rolls_the_whole_batch_back_and_the_payloads_stay_pending(north, monkeypatch):
    channel = webhook_channel(north)
    for i in range(5):
        _store(channel, f"k{i}", f"evt-k{i}", value=f"c{i}@example.org")
    real_store = ingest_module._store
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the worker is killed: not an Exception, no fallback
        return real_store(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_store", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        process_batch()
    assert not Message.objects.exists() and not Conversation.objects.exists()
    assert RawPayload.objects.filter(status=PayloadStatus.RECEIVED).count() == 5
    monkeypatch.undo()
    assert process_batch().created == 5
    assert Message.objects.count() == 5


def test_a_failing_batch_is_retried_payload_by_payload_so_one_bad_message_holds_up_no_other(
    north, monkeypatch
):
    channel = webhook_channel(north)
    for i in range(3):
        _store(channel, f"b{i}", f"evt-b{i}", value=f"c{i}@example.org", text=f"text {i}")
    real_store = ingest_module._store

    def poison(channel, cm, *args, **kwargs):
        if cm.external_id == "b1":
            raise ValueError("bug on this one")
        return real_store(channel, cm, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "_store", poison)
    result = process_batch()
    assert result.created == 2 and result.finished == 2
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["b0", "b2"]
    bad = RawPayload.objects.get(delivery_id="evt-b1")
    assert bad.status == PayloadStatus.RECEIVED and "bug on this one" in bad.error and bad.attempts == 1
