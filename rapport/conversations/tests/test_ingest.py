"""The ingest pipeline: exactly once, identity, threading, sanitising, scoring fallback."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from rapport.channels.actions import payload_store
from rapport.channels.base import Author, CanonicalMessage, email_external_id
from rapport.channels.models import PayloadStatus, RawPayload
from rapport.channels.testing import fixture, message_event, webhook_channel
from rapport.conversations import ingest as ingest_module
from rapport.conversations.ingest import ingest, process_payload
from rapport.conversations.models import Conversation, Message, Status
from rapport.conversations.sanitise import clean_html
from rapport.people.actions import person_create


@pytest.fixture
def channel(north):
    return webhook_channel(north)


def _store(channel, data, delivery=""):
    payload, _ = payload_store(
        channel=channel, body=json.dumps(data).encode(), headers={}, delivery_id=delivery
    )
    return payload


def cm(ext, value="jane@example.org", kind="email", text="Hello", **kw):
    return CanonicalMessage("webhook", ext, Author(kind, value, kw.pop("name", "Jane Doe")), text=text, **kw)


# --- exactly once -------------------------------------------------------------------------


def test_killed_worker_before_marking_processed_loses_and_duplicates_nothing(channel, monkeypatch):
    payload = _store(channel, fixture("message"))

    def crash(p):
        raise SystemExit("worker killed")

    monkeypatch.setattr(ingest_module, "_mark_processed", crash)
    with pytest.raises(SystemExit):
        process_payload(payload.pk)
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.RECEIVED  # not acknowledged as done
    assert Message.objects.count() == 1
    monkeypatch.undo()
    assert ingest_module.process_pending() == 1  # the recovery sweep
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.PROCESSED
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1


def test_killed_worker_inside_the_store_transaction_leaves_nothing_half_written(channel, monkeypatch):
    payload = _store(channel, fixture("message"))
    real_route = ingest_module.routing.route

    def crash(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module.routing, "route", crash)
    with pytest.raises(KeyboardInterrupt):
        process_payload(payload.pk)
    assert not Message.objects.exists() and not Conversation.objects.exists()
    monkeypatch.setattr(ingest_module.routing, "route", real_route)
    process_payload(payload.pk)
    assert Message.objects.count() == 1 and Conversation.objects.count() == 1


def test_reprocessing_a_payload_many_times_gives_one_message(channel):
    payload = _store(channel, fixture("message"))
    for _ in range(10):
        RawPayload.objects.filter(pk=payload.pk).update(status=PayloadStatus.RECEIVED)
        process_payload(payload.pk)
    assert Message.objects.count() == 1


def test_database_error_keeps_payload_for_retry_then_dead_after_max_attempts(channel, monkeypatch):
    from django.db import OperationalError

    payload = _store(channel, fixture("message"))

    def broken(*a, **k):
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(ingest_module, "_store", broken)
    for _ in range(ingest_module.MAX_ATTEMPTS - 1):
        with pytest.raises(OperationalError):
            process_payload(payload.pk)
        payload.refresh_from_db()
        assert payload.status == PayloadStatus.RECEIVED and "disk I/O" in payload.error
    process_payload(payload.pk)
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.DEAD and "5 times" in payload.error


def test_missing_message_id_gets_a_deterministic_hash_so_refetching_dedups(channel):
    ext1 = email_external_id(
        message_id="",
        from_="Jane <jane@example.org>",
        date="Tue, 4 Mar 2025 09:15:00 +0000",
        subject="Hi",
        body="Body",
    )
    ext2 = email_external_id(
        message_id="  ",
        from_="jane <JANE@example.org>".replace("jane <JANE", "Jane <jane"),
        date="Tue, 4 Mar 2025 09:15:00 +0000",
        subject="Hi",
        body="Body",
    )
    assert ext1 == ext2 and ext1.startswith("sha256:")
    assert ext1 != email_external_id(
        message_id="",
        from_="Jane <jane@example.org>",
        date="Tue, 4 Mar 2025 09:15:00 +0000",
        subject="Hi",
        body="Body!",
    )
    assert (
        email_external_id(message_id="<abc@mail.example>", from_="", date="", subject="", body="")
        == "abc@mail.example"
    )
    ingest(channel, cm(ext1))
    ingest(channel, cm(ext2))
    assert Message.objects.count() == 1


def test_message_without_any_id_is_hashed_from_its_content(channel):
    first = ingest(channel, cm("", text="Same words"))
    again = ingest(channel, cm("", text="Same words"))
    assert first.created and not again.created
    assert first.message.external_id.startswith("sha256:")


# --- sanitising -----------------------------------------------------------------------------


HOSTILE = [
    "<script>alert(1)</script>",
    'onmouseover="alert',
    "onerror",
    "onload",
    "javascript:",
    "data:text/html",
    "<base",
    "<svg",
    "<iframe",
    "<style",
    "<img",
]


def test_hostile_html_is_stored_sanitised(channel):
    payload = _store(channel, fixture("hostile"))
    process_payload(payload.pk)
    msg = Message.objects.get()
    for needle in HOSTILE:
        assert needle not in msg.html.lower(), needle
    assert 'href="https://example.org/ok"' in msg.html
    assert "Hi" in msg.text and "alert" not in msg.text  # plain-text fallback from the clean HTML


def test_sanitising_is_idempotent():
    raw = fixture("hostile")["message"]["html"]
    once = clean_html(raw)
    assert clean_html(once) == once


def test_hostile_content_renders_escaped_on_the_conversation_page(channel, admin):
    from conftest import login

    payload = _store(channel, fixture("hostile"))
    process_payload(payload.pk)
    conv = Conversation.objects.get()
    page = login(admin).get(f"/inbox/{conv.pk}/").content.decode()
    assert "<script>alert" not in page
    assert "<img src=x onerror" not in page  # the display name is shown as text
    assert "&lt;img src=x onerror=alert(6)&gt;" in page
    assert "javascript:alert" not in page and "data:text/html" not in page
    assert "<base " not in page and "<svg" not in page


# --- identity -------------------------------------------------------------------------------


def test_known_email_resolves_to_the_existing_person(channel, alice):
    person = person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@example.org")]
    )
    result = ingest(channel, cm("m1", value="JANE@Example.org"))
    assert result.message.person == person
    assert result.message.conversation.person == person


def test_known_handle_resolves_to_the_existing_person(channel, alice):
    person = person_create(actor=alice, first_name="Max", identities=[("x", "@MaxPower")])
    assert ingest(channel, cm("m1", kind="x", value="maxpower")).message.person == person


def test_unknown_sender_becomes_a_needs_review_person_in_the_channel_team(channel, north):
    result = ingest(channel, cm("m1", value="new.customer@example.net", name="Nina Novak"))
    person = result.message.person
    assert person.needs_review and person.source == "inbox"
    assert (person.first_name, person.last_name) == ("Nina", "Novak")
    assert person.team == north
    assert person.identities.get().value == "new.customer@example.net"
    assert person.owner.username == "rapport-bot" and not person.owner.has_usable_password()
    # The next message from them finds the same person.
    assert ingest(channel, cm("m2", value="new.customer@example.net")).message.person == person


def test_unusable_identity_still_stores_the_message(channel):
    result = ingest(channel, cm("m1", kind="email", value="not an email"))
    assert result.created and result.message.person is None
    assert result.message.author_value == "not an email"


# --- threading ------------------------------------------------------------------------------


def test_reply_threads_by_in_reply_to(channel):
    first = ingest(channel, cm("<a@x>", subject="Order"))
    reply = ingest(channel, cm("<b@x>", value="someone-else@example.org", in_reply_to="<a@x>"))
    assert reply.message.conversation == first.message.conversation


def test_reply_threads_by_references_and_parent_id(channel):
    first = ingest(channel, cm("root"))
    by_refs = ingest(channel, cm("r2", value="x@example.org", references=("unknown", "root")))
    by_parent = ingest(channel, cm("r3", value="y@example.org", parent_id="r2"))
    assert by_refs.message.conversation == first.message.conversation == by_parent.message.conversation


def test_dm_thread_id_keeps_one_conversation(channel):
    a = ingest(channel, cm("dm1", kind="x", value="maxpower", thread_id="dm-42"))
    b = ingest(channel, cm("dm2", kind="x", value="otherguy", thread_id="dm-42"))
    assert a.message.conversation == b.message.conversation


def test_same_person_within_the_window_joins_their_open_conversation(channel):
    now = timezone.now()
    a = ingest(channel, cm("w1"), now=now)
    b = ingest(channel, cm("w2"), now=now + dt.timedelta(days=6))
    c = ingest(channel, cm("w3"), now=now + dt.timedelta(days=14))
    assert a.message.conversation == b.message.conversation
    assert c.message.conversation != a.message.conversation


def test_closed_conversation_is_not_reopened_by_a_new_message(channel):
    a = ingest(channel, cm("c1"))
    Conversation.objects.filter(pk=a.message.conversation_id).update(status=Status.CLOSED)
    b = ingest(channel, cm("c2"))
    assert b.message.conversation != a.message.conversation


def test_customer_answer_reopens_a_waiting_conversation(channel):
    a = ingest(channel, cm("o1"))
    Conversation.objects.filter(pk=a.message.conversation_id).update(status=Status.WAITING)
    b = ingest(channel, cm("o2", in_reply_to="o1"))
    assert b.message.conversation.status == Status.OPEN


def test_scoring_falls_back_to_neutral_when_intelligence_fails(channel, monkeypatch):
    from rapport.conversations import scoring

    monkeypatch.setattr(scoring, "_analyser", lambda: lambda text: 1 / 0)
    result = ingest(channel, cm("s1", text="I am furious, this is the worst service ever"))
    assert result.message.sentiment == "neutral"


def test_scoring_uses_the_intelligence_interface(channel, monkeypatch):
    from types import SimpleNamespace

    from rapport.conversations import scoring

    monkeypatch.setattr(
        scoring,
        "_analyser",
        lambda: (
            lambda text: SimpleNamespace(sentiment="negative", score=-0.8, urgency="high", intent="complaint")
        ),
    )
    conv = ingest(channel, cm("s2", text="Terrible")).message.conversation
    assert (conv.sentiment, conv.urgency) == ("negative", "high")


def test_webhook_event_through_the_full_pipeline(channel, django_capture_on_commit_callbacks):
    from django.test import Client

    from rapport.channels.testing import post_signed

    with django_capture_on_commit_callbacks(execute=True):
        post_signed(Client(), channel, message_event("full-1", text="First"))
        post_signed(Client(), channel, message_event("full-2", text="Second", in_reply_to="full-1"))
    assert Conversation.objects.count() == 1
    assert list(Message.objects.values_list("external_id", flat=True).order_by("id")) == ["full-1", "full-2"]
