"""The BCC/forward log: a rep's own email becomes an `email` activity on each external
participant's timeline, owned by the rep; no conversation; never trusted from From alone."""

import pytest

from rapport.activities.models import Activity, ActivityKind
from rapport.channels.actions import payload_store
from rapport.channels.connectors.email import bcc, poller
from rapport.channels.connectors.email.tests.conftest import email_channel
from rapport.channels.models import PayloadStatus, RawPayload
from rapport.conversations.ingest import process_payload
from rapport.conversations.models import Conversation, Message
from rapport.people.actions import person_create
from rapport.people.models import Person


def bcc_channel(team, **kw):
    return email_channel(team, mode="bcc_log", bcc_address="log@crm.rapport.test", **kw)


def rep_email(
    *, to: str, cc: str = "", sender: str = "alice@rapport.test", extra: str = "", mid: str = "deal-42"
) -> bytes:
    lines = [
        f"From: Alice <{sender}>",
        f"To: {to}",
        *([f"Cc: {cc}"] if cc else []),
        "Subject: Your quote",
        "Date: Tue, 04 Mar 2025 09:15:00 +0100",
        f"Message-ID: <{mid}@rapport.test>",
        *([extra] if extra else []),
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Here is the quote we discussed.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def rep(alice):
    alice.email = "alice@rapport.test"
    alice.save()
    return alice


def process(channel, raw: bytes):
    payload, _ = payload_store(channel=channel, body=raw, headers={})
    process_payload(payload.pk)
    payload.refresh_from_db()
    return payload


def test_bcc_logs_an_email_activity_on_known_and_new_people(north, rep, carol):
    channel = bcc_channel(north)
    known = person_create(actor=rep, first_name="Omar", identities=[("email", "omar@example.com")])
    address = bcc.address_for(channel, rep)
    assert address.startswith(f"log+{rep.pk}-") and address.endswith("@crm.rapport.test")
    raw = rep_email(
        to="Omar <OMAR@example.com>",
        cc=f"Carol <{carol.email or 'carol@rapport.test'}>, Priya Shah <priya@example.net>",
        extra=f"Delivered-To: {address}",
    )
    payload = process(channel, raw)

    assert payload.status == PayloadStatus.PROCESSED, payload.error
    assert not Conversation.objects.exists() and not Message.objects.exists()
    acts = Activity.objects.filter(kind=ActivityKind.EMAIL).order_by("person__id")
    assert [a.person.pk for a in acts][0] == known.pk
    assert len(acts) == 2
    priya = Person.objects.get(identities__value="priya@example.net")
    assert priya.needs_review and (priya.first_name, priya.last_name) == ("Priya", "Shah")
    for a in acts:
        assert a.owner == rep
        assert a.subject == "Your quote"
        assert a.body.startswith("Here is the quote")
        assert a.message_id == "deal-42@rapport.test"
        assert a.email_from == "alice@rapport.test"


def test_internal_users_and_the_log_address_are_not_logged_as_customers(north, rep, bob):
    bob.email = "Bob@Rapport.test"
    bob.save()
    channel = bcc_channel(north, internal_domains=["partner-internal.test"])
    address = bcc.address_for(channel, rep)
    raw = rep_email(to=f"bob@rapport.test, ops@partner-internal.test, {address}, jane@example.org")
    assert process(channel, raw).status == PayloadStatus.PROCESSED
    assert list(Activity.objects.values_list("person__identities__value", flat=True)) == ["jane@example.org"]


def test_replaying_the_same_email_logs_nothing_twice(north, rep):
    channel = bcc_channel(north)
    raw = rep_email(to="jane@example.org", extra=f"Delivered-To: {bcc.address_for(channel, rep)}")
    process(channel, raw)
    # Same message fetched again after a UIDVALIDITY change, with a new trace header.
    process(channel, b"Received: by mx2\r\n" + raw)
    assert Activity.objects.count() == 1
    assert Person.objects.count() == 1


def test_from_header_alone_never_identifies_the_rep(north, rep):
    channel = bcc_channel(north)
    raw = rep_email(to="jane@example.org", extra="Delivered-To: log@crm.rapport.test")
    payload = process(channel, raw)
    assert payload.status == PayloadStatus.DEAD
    assert "Cannot tell which Rapport user" in payload.error
    assert not Activity.objects.exists()
    assert not Person.objects.exists()


def test_a_forged_token_is_refused(north, rep):
    channel = bcc_channel(north)
    raw = rep_email(to="jane@example.org", extra=f"Delivered-To: log+{rep.pk}-{'0' * 20}@crm.rapport.test")
    assert process(channel, raw).status == PayloadStatus.DEAD
    assert not Activity.objects.exists()


def test_another_channels_token_is_refused(north, rep):
    first, second = bcc_channel(north), bcc_channel(north)
    raw = rep_email(to="jane@example.org", extra=f"Delivered-To: {bcc.address_for(first, rep)}")
    assert process(second, raw).status == PayloadStatus.DEAD


def test_shared_address_trusts_from_only_with_our_servers_dmarc_pass(north, rep):
    channel = bcc_channel(north, bcc_trusted_authserv_id="mx.rapport.test")
    forged = rep_email(to="jane@example.org", extra="Authentication-Results: evil.example; dmarc=pass")
    assert process(channel, forged).status == PayloadStatus.DEAD
    failed = rep_email(
        to="jane@example.org", extra="Authentication-Results: mx.rapport.test; dmarc=fail", mid="m2"
    )
    assert process(channel, failed).status == PayloadStatus.DEAD
    good = rep_email(
        to="jane@example.org",
        extra="Authentication-Results: mx.rapport.test; spf=pass smtp.mailfrom=rapport.test; dmarc=pass header.from=rapport.test",
        mid="m3",
    )
    assert process(channel, good).status == PayloadStatus.PROCESSED
    assert Activity.objects.get().owner == rep


def test_read_only_user_cannot_log(north, reader):
    channel = bcc_channel(north)
    raw = rep_email(to="jane@example.org", extra=f"Delivered-To: {bcc.address_for(channel, reader)}")
    payload = process(channel, raw)
    assert payload.status == PayloadStatus.DEAD and "read-only" in payload.error


def test_forward_as_attachment_logs_the_forwarded_messages_participants(north, rep):
    channel = bcc_channel(north)
    address = bcc.address_for(channel, rep)
    raw = (
        f"From: Alice <alice@rapport.test>\r\nTo: {address}\r\nSubject: Fwd: Contract\r\n"
        "Message-ID: <outer@rapport.test>\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nFYI\r\n'
        "--m\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Omar Haddad <omar@example.com>\r\nTo: alice@rapport.test\r\nCc: legal@example.com\r\n"
        "Subject: Contract\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\nMessage-ID: <contract@example.com>\r\n\r\n"
        "Signed copy attached.\r\n--m--\r\n"
    ).encode()
    assert process(channel, raw).status == PayloadStatus.PROCESSED
    acts = Activity.objects.order_by("id")
    assert sorted(a.person.identities.get().value for a in acts) == ["legal@example.com", "omar@example.com"]
    assert {a.subject for a in acts} == {"Contract"}
    assert {a.message_id for a in acts} == {"contract@example.com"}
    assert acts[0].body.startswith("Signed copy attached.")


def test_inline_forward_logs_the_quoted_sender(north, rep):
    channel = bcc_channel(north)
    address = bcc.address_for(channel, rep)
    raw = (
        f"From: Alice <alice@rapport.test>\r\nTo: {address}\r\nSubject: Fwd: Pricing\r\n"
        "Message-ID: <inline@rapport.test>\r\nContent-Type: text/plain\r\n\r\n"
        "See below\r\n\r\n---------- Forwarded message ---------\r\n"
        "From: Lena Vogel <lena@example.de>\r\nDate: Mon, 3 Mar 2025\r\nSubject: Pricing\r\n"
        "To: Alice <alice@rapport.test>\r\n\r\nWhat does the pro plan cost?\r\n"
    ).encode()
    assert process(channel, raw).status == PayloadStatus.PROCESSED
    act = Activity.objects.get()
    assert act.person.identities.get().value == "lena@example.de"
    assert act.subject == "Pricing"


def test_bcc_through_a_real_imap_poll(dovecot, north, rep, django_capture_on_commit_callbacks):
    user = dovecot.add_user()
    channel = bcc_channel(north, dovecot=dovecot, user=user, import_existing=True)
    dovecot.append(
        user,
        rep_email(to="Jane Doe <jane@example.org>", extra=f"Delivered-To: {bcc.address_for(channel, rep)}"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        result = poller.poll_channel(channel)

    assert result.stored == 1 and not result.error
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED
    act = Activity.objects.get()
    assert act.person.identities.get().value == "jane@example.org"
    assert act.owner == rep
    assert not Conversation.objects.exists()
