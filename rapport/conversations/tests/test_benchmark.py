"""The ingest benchmark on a small N, and the batch pipeline's exactly-once guarantees."""

import dataclasses
import io
import json

import pytest
from django.db.models import Count

from rapport.channels import registry
from rapport.channels.actions import payload_store
from rapport.channels.models import ChannelKind, PayloadStatus, RawPayload
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
    # Every message in the database (not only ids starting "bench-": a Bluesky post's id is
    # its at:// URI).
    assert Message.objects.count() == 60


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


# --- the generated traffic ------------------------------------------------------------------

# Every channel kind that receives customer messages; a generator left out fails here.
EXPECTED_KINDS = {
    "webhook",
    "email",
    "chat",
    "x",
    "mastodon",
    "bluesky",
    "facebook",
    "instagram",
    "whatsapp",
    "sms",
    "phone",
}


@pytest.fixture
def bench_channels(north, south):
    return benchmark._channels(north, south)


def test_every_connector_has_a_generator_and_none_is_left_out(bench_channels):
    out = io.StringIO()
    generators = benchmark._generators(bench_channels, out)
    assert "left out" not in out.getvalue()
    assert [g.kind for g in generators] == list(ChannelKind.values)
    assert set(ChannelKind.values) == EXPECTED_KINDS
    for kind, template in benchmark.TEMPLATES.items():
        # Realistic letters and messages, never the connectors' hostile or broken fixtures.
        hostile = ("hostile", "broken", "zip_bomb", "deep", "header_injection", "unknown", "not_")
        assert not any(word in template.fixture for word in hostile), (kind, template.fixture)


def test_a_connector_without_a_usable_template_is_left_out_and_said_so(bench_channels, monkeypatch):
    monkeypatch.setitem(
        benchmark.TEMPLATES,
        ChannelKind.SMS,
        dataclasses.replace(benchmark.TEMPLATES[ChannelKind.SMS], fields={"From": "{author}"}),
    )
    out = io.StringIO()
    kinds = [g.kind for g in benchmark._generators(bench_channels, out)]
    assert ChannelKind.SMS not in kinds and ChannelKind.PHONE in kinds
    assert "sms: left out (LookupError: the generated payload reads back with external id" in out.getvalue()


@pytest.mark.parametrize("kind", sorted(EXPECTED_KINDS))
def test_generated_payloads_read_back_through_the_real_normaliser(bench_channels, kind):
    from rapport.people.identities import normalise

    channel = bench_channels[kind]
    gen = benchmark.WebhookGenerator() if kind == "webhook" else benchmark.FixtureGenerator(kind)
    inbound = registry.inbound(kind)
    identities = set()
    previous = ""
    for n, (name, text) in enumerate(
        [
            ("Jane Doe", "Hello, could you tell me when order 1001 will be delivered?"),
            ("Zoë Müller", "Worst service ever: order 1002 & its <b>invoice</b> are lost. Refund now!"),
            (
                "Seán O'Brien",
                "Thanks a lot — the replacement for order 1003 works perfectly (5€ well spent).",
            ),
        ]
    ):
        sender = benchmark.Sender(n, kind, gen.identity_kind, gen.author(n), name)
        ext = f"bench-{n}-{1000 + n}"
        body = gen.body(ext=ext, sender=sender, text=text, reply_to=previous, thread=f"dm-{n}")
        cms = inbound.normalise(channel, RawPayload(channel=channel, body=body, headers=dict(gen.headers)))
        assert len(cms) == 1
        cm = cms[0]
        assert cm.external_id == gen.external_id(ext, sender)
        assert cm.author.kind == gen.identity_kind
        # A valid identity of its kind (phone numbers parse, handles are handles), one per sender.
        identity = normalise(gen.identity_kind, cm.author.value)
        assert identity == normalise(gen.identity_kind, sender.value)
        identities.add(identity)
        if kind == "phone":
            # A call's message is the connector's summary of the call, not the customer's words.
            assert cm.text.startswith("Inbound call: answered, ") and cm.text == gen.reads_as(
                ext, sender, text
            )
        else:
            assert text in cm.text and cm.text.strip() == gen.reads_as(ext, sender, text).strip()
        if previous and gen.replies:
            assert gen.external_id(previous, sender) in cm.reply_keys()
        previous = ext
    assert len(identities) == 3


def test_an_ingest_run_over_every_connector_stores_each_message_once(bench_channels):
    from rapport.conversations.models import Call

    figures = benchmark.run(messages=110, stdout=io.StringIO())  # 11 people: one per connector
    assert figures["channels"] == sorted(EXPECTED_KINDS)
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
    assert figures["payloads_pending"] == 0 and figures["payloads_dead"] == 0
    per_kind = dict(
        Message.objects.filter(channel__name__startswith="Bench ")
        .values_list("channel__kind")
        .annotate(n=Count("id"))
    )
    assert set(per_kind) == EXPECTED_KINDS and sum(per_kind.values()) == 110
    assert Call.objects.count() == per_kind["phone"]  # the connector's after_ingest hook ran
