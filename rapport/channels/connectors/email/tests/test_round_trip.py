"""Against a real Dovecot and a real SMTP sink: poll → conversation, cursor, UIDVALIDITY,
nothing changed on the server, reply threading, SMTP error classes."""

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.core.management import call_command

from rapport.channels.base import TransportError
from rapport.channels.connectors.email import poller, transport
from rapport.channels.connectors.email.tests.conftest import email_channel
from rapport.channels.models import ChannelStatus, PayloadStatus, RawPayload
from rapport.conversations.actions import conversation_reply
from rapport.conversations.models import Conversation, Delivery, Direction, Message

FIXTURES = Path(__file__).parent.parent / "fixtures"


def eml(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def customer_email(n: int, *, sender: str = "jane.doe@example.org", in_reply_to: str = "") -> bytes:
    lines = [
        f"From: Jane Doe <{sender}>",
        "To: support@rapport.test",
        f"Subject: Question {n}",
        "Date: Tue, 04 Mar 2025 09:15:00 +0100",
        f"Message-ID: <q{n}.{sender.replace('@', '.')}@mail.example.org>",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    lines += ["Content-Type: text/plain; charset=utf-8", "", f"Question number {n}, please help."]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def poll(django_capture_on_commit_callbacks):
    def _poll(channel):
        with django_capture_on_commit_callbacks(execute=True):
            result = poller.poll_channel(channel)
        channel.refresh_from_db()
        assert not result.error, result.error
        return result

    return _poll


def test_poll_turns_mail_into_a_conversation_with_a_resolved_person(dovecot, north, poll):
    user = dovecot.add_user()
    dovecot.append(user, eml("simple.eml"))
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True)

    result = poll(channel)

    assert result.stored == 1
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.PROCESSED
    msg = Message.objects.get()
    assert msg.external_id == "CAF1234.order4471@mail.example.org"
    assert msg.direction == Direction.INBOUND
    assert msg.text.startswith("Hello, the parcel arrived with a broken lid.")
    assert msg.attachments == [{"filename": "photo.jpg", "content_type": "image/jpeg", "size": 90, "url": ""}]
    assert msg.conversation.subject == "Order 4471 arrived damaged"
    assert msg.conversation.team == north
    assert msg.person.identities.get().value == "jane.doe@example.org"
    assert msg.person.needs_review
    state = channel.settings["imap_state"]["INBOX"]
    assert state["last_uid"] == 1 and state["uidvalidity"] > 0
    assert "imap_lease_until" not in channel.settings


def test_second_poll_fetches_nothing_new_and_new_mail_is_picked_up(dovecot, north, poll):
    user = dovecot.add_user()
    dovecot.append(user, customer_email(1))
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True)
    assert poll(channel).stored == 1

    again = poll(channel)
    assert again.folders[0].fetched == 0
    assert Message.objects.count() == 1

    dovecot.append(user, customer_email(2, sender="omar@example.com"))
    third = poll(channel)
    assert (third.folders[0].fetched, third.stored) == (1, 1)
    assert Message.objects.count() == 2
    assert channel.settings["imap_state"]["INBOX"]["last_uid"] == 2


def test_new_channel_starts_at_the_end_of_an_existing_mailbox(dovecot, north, poll):
    user = dovecot.add_user()
    dovecot.append(user, customer_email(1))
    channel = email_channel(north, dovecot=dovecot, user=user)

    assert poll(channel).stored == 0
    assert not Message.objects.exists()

    dovecot.append(user, customer_email(2))
    assert poll(channel).stored == 1
    assert Message.objects.get().subject == "Question 2"


def test_polling_never_marks_read_moves_or_deletes_mail(dovecot, north, poll):
    user = dovecot.add_user()
    dovecot.append(user, customer_email(1))
    dovecot.append(user, customer_email(2))
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True)

    poll(channel)

    flags = dovecot.flags(user)
    assert len(flags) == 2
    assert not any(b"\\Seen" in f or b"\\Deleted" in f for f in flags), flags
    assert Message.objects.count() == 2


def test_uidvalidity_change_rescans_without_duplicates(dovecot, north, poll):
    user = dovecot.add_user()
    dovecot.append(user, customer_email(1), folder="Support")
    dovecot.append(user, customer_email(2), folder="Support")
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True, folders=["Support"])
    poll(channel)
    before = channel.settings["imap_state"]["Support"]["uidvalidity"]
    assert Message.objects.count() == 2

    # Rebuild the folder on the server: new UIDVALIDITY, UIDs restart at 1, same mail.
    conn = dovecot.imap(user)
    conn.delete('"Support"')
    conn.logout()
    dovecot.append(user, customer_email(1), folder="Support")
    conn = dovecot.imap(user)
    conn.append('"Support"', None, None, customer_email(2))
    conn.append('"Support"', None, None, customer_email(3))
    conn.logout()

    result = poll(channel)

    after = channel.settings["imap_state"]["Support"]
    assert after["uidvalidity"] != before
    assert result.folders[0].rescan
    assert result.folders[0].fetched == 3
    assert result.stored == 1 and result.folders[0].duplicates == 2
    assert Message.objects.count() == 3
    assert sorted(Message.objects.values_list("subject", flat=True)) == [
        "Question 1",
        "Question 2",
        "Question 3",
    ]


def test_message_over_the_size_cap_is_kept_as_header_only(dovecot, north, poll):
    user = dovecot.add_user()
    big = customer_email(1).replace(b"please help.", b"please help." + b" x" * 40_000)
    dovecot.append(user, big)
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True, max_message_bytes=20_000)

    result = poll(channel)

    assert result.folders[0].truncated == 1
    payload = RawPayload.objects.get()
    assert len(payload.body_bytes) < 1000
    msg = Message.objects.get()
    assert msg.external_id == "q1.jane.doe.example.org@mail.example.org"
    assert "only its header was stored" in msg.text


def test_wrong_password_is_recorded_on_the_channel_not_raised(
    dovecot, north, django_capture_on_commit_callbacks
):
    user = dovecot.add_user()
    channel = email_channel(north, dovecot=dovecot, user=user)
    creds = channel.credentials
    channel.credentials = {**creds, "imap_password": "wrong"}
    channel.save()

    result = poller.poll_channel(channel)

    channel.refresh_from_db()
    assert "AUTHENTICATIONFAILED" in result.error or "failed" in result.error.lower()
    assert channel.last_error.startswith("IMAP poll failed")
    assert "imap_lease_until" not in channel.settings


def test_a_held_lease_makes_a_second_poller_skip(dovecot, north):
    user = dovecot.add_user()
    channel = email_channel(north, dovecot=dovecot, user=user)
    from django.utils import timezone

    assert poller._claim(channel, timezone.now())
    other = type(channel).objects.get(pk=channel.pk)
    assert poller.poll_channel(other).skipped == "another poller holds this channel"


def test_poll_email_command_polls_the_given_channel(
    dovecot, north, django_capture_on_commit_callbacks, capsys
):
    user = dovecot.add_user()
    dovecot.append(user, customer_email(1))
    channel = email_channel(north, dovecot=dovecot, user=user, import_existing=True)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("poll_email", "--channel", str(channel.pk))
    assert "INBOX: 1 fetched, 1 new" in capsys.readouterr().out
    assert Message.objects.count() == 1


def test_reply_reaches_smtp_with_threading_headers_and_the_answer_threads_back(
    dovecot, north, alice, smtp_sink, poll, django_capture_on_commit_callbacks
):
    user = dovecot.add_user()
    dovecot.append(user, eml("simple.eml"))
    channel = email_channel(north, dovecot=dovecot, user=user, smtp_port=smtp_sink.port, import_existing=True)
    poll(channel)
    conversation = Conversation.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(
            actor=alice, conversation=conversation, text="Sorry! A new one <ships> today."
        )

    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.SENT, reply.delivery_error
    assert len(smtp_sink.messages) == 1
    envelope = smtp_sink.messages[0]
    assert envelope.rcpt_tos == ["Jane.Doe@Example.org"]
    sent = message_from_bytes(envelope.content, policy=policy.default)
    assert sent["In-Reply-To"] == "<CAF1234.order4471@mail.example.org>"
    assert sent["References"] == "<CAF1234.order4471@mail.example.org>"
    assert sent["Subject"] == "Re: Order 4471 arrived damaged"
    assert sent["Message-ID"] == f"<{reply.external_id}>"
    assert reply.external_id.endswith("@rapport.test")
    assert sent.get_body(("plain",)).get_content().strip() == "Sorry! A new one <ships> today."
    assert "&lt;ships&gt;" in sent.get_body(("html",)).get_content()

    # The customer answers the reply: it lands in the same conversation.
    dovecot.append(user, customer_email(9, in_reply_to=reply.external_id))
    poll(channel)
    answer = Message.objects.get(subject="Question 9")
    assert answer.conversation_id == conversation.pk
    assert Conversation.objects.count() == 1


def test_second_reply_references_the_whole_thread(
    dovecot, north, alice, smtp_sink, poll, django_capture_on_commit_callbacks
):
    user = dovecot.add_user()
    dovecot.append(user, eml("simple.eml"))
    channel = email_channel(north, dovecot=dovecot, user=user, smtp_port=smtp_sink.port, import_existing=True)
    poll(channel)
    conversation = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        first = conversation_reply(actor=alice, conversation=conversation, text="First answer")
    first.refresh_from_db()
    dovecot.append(
        user, eml("reply.eml").replace(b"rapport.1.1.abc@rapport.test", first.external_id.encode())
    )
    poll(channel)
    conversation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        conversation_reply(actor=alice, conversation=conversation, text="Second answer")

    sent = message_from_bytes(smtp_sink.messages[-1].content, policy=policy.default)
    assert sent["In-Reply-To"] == "<CAF5678.reply@mail.example.org>"
    assert sent["References"].split() == [
        "<CAF1234.order4471@mail.example.org>",
        f"<{first.external_id}>",
        "<CAF5678.reply@mail.example.org>",
    ]
    assert sent["Subject"] == "Re: Order 4471 arrived damaged"


# --- SMTP failures --------------------------------------------------------------------------


def _queued_reply(north, alice, port, django_capture_on_commit_callbacks, *, to="jane@example.org"):
    channel = email_channel(north, smtp_port=port)
    conversation = Conversation.objects.create(subject="Hello", team=north, reply_channel=channel)
    Message.objects.create(
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=channel,
        external_id="m1@example.org",
        author_kind="email",
        author_value=to,
        subject="Hello",
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conversation, text="Hi")
    reply.refresh_from_db()
    channel.refresh_from_db()
    return reply, channel


def test_recipient_refused_5xx_is_permanent_and_disables_the_channel(
    north, alice, smtp_sink, django_capture_on_commit_callbacks
):
    smtp_sink.refuse["gone@example.org"] = "550 5.1.1 No such user"
    reply, channel = _queued_reply(
        north, alice, smtp_sink.port, django_capture_on_commit_callbacks, to="gone@example.org"
    )
    assert reply.delivery_status == Delivery.FAILED
    assert "550" in reply.delivery_error
    assert channel.status == ChannelStatus.ERROR


def test_recipient_deferred_4xx_is_transient_and_stays_queued(
    north, alice, smtp_sink, django_capture_on_commit_callbacks
):
    smtp_sink.refuse["busy@example.org"] = "451 4.7.1 Try again later"
    reply, channel = _queued_reply(
        north, alice, smtp_sink.port, django_capture_on_commit_callbacks, to="busy@example.org"
    )
    assert reply.delivery_status == Delivery.QUEUED
    assert "451" in reply.delivery_error
    assert channel.status == ChannelStatus.ACTIVE


def test_unreachable_smtp_server_is_transient(north, alice, django_capture_on_commit_callbacks):
    from rapport.channels.connectors.email.tests.conftest import free_port

    reply, channel = _queued_reply(north, alice, free_port(), django_capture_on_commit_callbacks)
    assert reply.delivery_status == Delivery.QUEUED
    assert "Could not reach the SMTP server" in reply.delivery_error
    assert channel.status == ChannelStatus.ACTIVE


def test_classify_smtp_errors():
    import smtplib

    assert transport._classify(smtplib.SMTPAuthenticationError(535, b"bad credentials")).permanent
    assert not transport._classify(smtplib.SMTPAuthenticationError(454, b"temporary")).permanent
    assert transport._classify(smtplib.SMTPSenderRefused(553, b"not yours", "a@b.c")).permanent
    assert not transport._classify(smtplib.SMTPServerDisconnected("bye")).permanent
    assert not transport._classify(TimeoutError("slow")).permanent
    assert isinstance(transport._classify(ConnectionRefusedError()), TransportError)


def test_header_injection_in_subject_cannot_add_headers(
    north, alice, smtp_sink, django_capture_on_commit_callbacks
):
    reply, channel = _queued_reply(north, alice, smtp_sink.port, django_capture_on_commit_callbacks)
    Conversation.objects.filter(pk=reply.conversation_id).update(subject="x\r\nBcc: victim@example.com")
    Message.objects.filter(direction=Direction.INBOUND).update(subject="x\r\nBcc: victim@example.com")
    reply.refresh_from_db()
    email = transport.build(channel, reply)
    assert email["Bcc"] is None
    assert email["Subject"] == "Re: x Bcc: victim@example.com"


def test_reply_goes_to_reply_to_and_auto_replies_are_marked(dovecot, north, smtp_sink, poll):
    from rapport.conversations.actions import queue_outbound
    from rapport.conversations.ingest import system_user

    user = dovecot.add_user()
    dovecot.append(
        user, customer_email(1).replace(b"Subject:", b"Reply-To: Desk <desk@example.org>\r\nSubject:")
    )
    channel = email_channel(north, dovecot=dovecot, user=user, smtp_port=smtp_sink.port, import_existing=True)
    poll(channel)
    conversation = Conversation.objects.get()
    auto = queue_outbound(conversation=conversation, channel=channel, author=system_user(), text="We got it.")

    email = transport.build(channel, auto)

    assert email["To"] == "desk@example.org"
    assert email["Auto-Submitted"] == "auto-replied"
    assert transport.send(channel, auto) == str(email["Message-ID"]).strip("<>")
    assert smtp_sink.messages[0].rcpt_tos == ["desk@example.org"]


# --- after "continue by email" ---------------------------------------------------------------


def _x_conversation(north, alice):
    from rapport.channels.models import Channel, ChannelKind
    from rapport.people.models import Identity, Person

    person = Person.objects.create(first_name="Jane", last_name="Doe", owner=alice, team=north)
    Identity.objects.create(person=person, kind="email", value="jane.doe@example.org")
    x = Channel.objects.create(kind=ChannelKind.X, name="X", team=north)
    conversation = Conversation.objects.create(
        subject="Order 4471 arrived smashed", team=north, person=person, reply_channel=x
    )
    Message.objects.create(
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=x,
        external_id="1797653871634211234",
        author_kind="x",
        author_value="JaneDoe",
        is_public=True,
        text="my order 4471 arrived smashed",
    )
    return conversation


def test_email_hop_sends_a_fresh_email_to_the_chosen_address(
    north, alice, smtp_sink, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_hop

    channel = email_channel(north, smtp_port=smtp_sink.port)
    conversation = _x_conversation(north, alice)
    conversation_hop(actor=alice, conversation=conversation, mode="email", address="Jane.Doe@example.org")
    conversation.refresh_from_db()
    assert conversation.reply_channel == channel
    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conversation, text="Here is your label.")
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.SENT, reply.delivery_error
    [envelope] = smtp_sink.messages
    assert envelope.rcpt_tos == ["jane.doe@example.org"]
    sent = message_from_bytes(envelope.content, policy=policy.default)
    assert sent["To"] == "jane.doe@example.org"
    assert sent["Subject"] == "Order 4471 arrived smashed"  # not "Re:" of an email never sent
    assert sent["In-Reply-To"] is None and sent["References"] is None
    assert sent["Message-ID"].strip("<>") == reply.external_id
    assert "Here is your label." in sent.get_body(("plain",)).get_content()


def test_second_email_after_a_hop_references_the_first(
    north, alice, smtp_sink, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_hop

    email_channel(north, smtp_port=smtp_sink.port)
    conversation = _x_conversation(north, alice)
    conversation_hop(actor=alice, conversation=conversation, mode="email", address="jane.doe@example.org")
    conversation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        first = conversation_reply(actor=alice, conversation=conversation, text="One")
        conversation_reply(actor=alice, conversation=conversation, text="Two")
    first.refresh_from_db()
    second = message_from_bytes(smtp_sink.messages[-1].content, policy=policy.default)
    assert second["To"] == "jane.doe@example.org" and second["In-Reply-To"] is None
    assert second["References"] == f"<{first.external_id}>"


def test_email_hop_address_wins_over_an_older_inbound_email(north, alice):
    reply, channel = _queued_reply_without_sending(north, alice)
    Conversation.objects.filter(pk=reply.conversation_id).update(
        reply_mode="email", reply_to="jane.work@example.com"
    )
    reply.refresh_from_db()
    email = transport.build(channel, reply)
    assert email["To"] == "jane.work@example.com"
    assert email["In-Reply-To"] == "<m1@example.org>" and email["Subject"] == "Re: Hello"


def _queued_reply_without_sending(north, alice):
    from rapport.conversations.actions import queue_outbound

    channel = email_channel(north)
    conversation = Conversation.objects.create(subject="Hello", team=north, reply_channel=channel)
    Message.objects.create(
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=channel,
        external_id="m1@example.org",
        author_kind="email",
        author_value="jane@example.org",
        subject="Hello",
    )
    return queue_outbound(conversation=conversation, channel=channel, author=alice, text="Hi"), channel
