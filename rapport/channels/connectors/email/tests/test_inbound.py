"""MIME → canonical message, one fixture per case, hostile ones included; and what the
pipeline stores from them (sanitised HTML, dead letters with a reason)."""

import datetime as dt
from pathlib import Path

import pytest

from rapport.channels.actions import payload_store
from rapport.channels.base import NormaliseError
from rapport.channels.connectors.email import inbound
from rapport.channels.connectors.email.tests.conftest import email_channel
from rapport.channels.models import PayloadStatus
from rapport.conversations.ingest import process_payload
from rapport.conversations.models import Message

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


def read(name: str) -> inbound.Parsed:
    return inbound.read((FIXTURES / name).read_bytes(), received=NOW)


def store(channel, name: str):
    payload, _ = payload_store(channel=channel, body=(FIXTURES / name).read_bytes(), headers={})
    process_payload(payload.pk)
    payload.refresh_from_db()
    return payload


@pytest.fixture
def channel(north):
    return email_channel(north)


def test_simple_message_prefers_text_plain_and_keeps_html_and_attachment_metadata():
    p = read("simple.eml")
    cm = inbound.to_canonical(p)
    assert cm.external_id == "CAF1234.order4471@mail.example.org"
    assert cm.author.value == "Jane.Doe@Example.org" and cm.author.display_name == "Jane Doe"
    assert cm.text == "Hello, the parcel arrived with a broken lid. Can you send a replacement? — Jane\n"
    assert cm.html == "<p>Hello, the parcel arrived with a <b>broken</b> lid.</p>"
    assert cm.subject == "Order 4471 arrived damaged"
    assert cm.sent_at == dt.datetime(2025, 3, 4, 8, 15, tzinfo=dt.UTC)
    assert [a.as_dict() for a in cm.attachments] == [
        {"filename": "photo.jpg", "content_type": "image/jpeg", "size": 90, "url": ""}
    ]


def test_reply_carries_in_reply_to_and_references_without_brackets():
    cm = inbound.to_canonical(read("reply.eml"))
    assert cm.in_reply_to == "rapport.1.1.abc@rapport.test"
    assert cm.references == ("CAF1234.order4471@mail.example.org", "rapport.1.1.abc@rapport.test")
    assert cm.reply_keys()[0] == "rapport.1.1.abc@rapport.test"


def test_missing_message_id_gives_a_stable_content_hash():
    first, second = read("no_message_id.eml"), read("no_message_id.eml")
    assert first.external_id.startswith("sha256:")
    assert first.external_id == second.external_id
    other = inbound.read(
        (FIXTURES / "no_message_id.eml").read_bytes().replace(b"A message", b"Another"), received=NOW
    )
    assert other.external_id != first.external_id


def test_missing_message_id_fetched_twice_is_one_message(channel):
    store(channel, "no_message_id.eml")
    # The server re-delivers it with an extra trace header (a different body digest).
    raw = b"X-Trace: again\r\n" + (FIXTURES / "no_message_id.eml").read_bytes()
    payload, created = payload_store(channel=channel, body=raw, headers={})
    assert created
    process_payload(payload.pk)
    assert Message.objects.count() == 1


def test_unknown_charsets_decode_with_replacement_and_bad_date_uses_received_time():
    p = read("unknown_charset.eml")
    assert p.text == "Caf\ufffd cr\ufffdme \ufffd\ufffd bytes\n"
    assert p.sent_at == NOW
    assert p.sender[1] == "jose@example.org"


def test_encoded_newlines_in_headers_cannot_inject_headers():
    p = read("header_injection.eml")
    assert "\n" not in p.subject and "\r" not in p.subject
    assert p.subject == "Hi Bcc: victim@example.com X-Evil: 1"
    assert inbound.clean_header("a\r\nb\u2028c\x00d") == "a b c d"


def test_hundred_deep_multipart_is_refused_with_a_reason(channel):
    with pytest.raises(NormaliseError, match="more than 16 levels deep"):
        read("deep_multipart.eml")
    payload = store(channel, "deep_multipart.eml")
    assert payload.status == PayloadStatus.DEAD
    assert "more than 16 levels deep" in payload.error
    assert not Message.objects.exists()


def test_thousand_deep_multipart_does_not_crash_the_parser(channel):
    lines = [
        "From: a@example.org",
        "Message-ID: <very-deep@example.org>",
        'Content-Type: multipart/mixed; boundary="b0"',
        "",
    ]
    for i in range(1, 1000):
        lines += [f"--b{i - 1}", f'Content-Type: multipart/mixed; boundary="b{i}"', ""]
    payload, _ = payload_store(channel=channel, body="\r\n".join(lines).encode(), headers={})
    process_payload(payload.pk)
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.DEAD
    assert "deep" in payload.error


def test_zip_bomb_is_metadata_only_with_sanitised_names():
    p = read("zip_bomb.eml")
    assert p.text == "See attached."
    names = [(a.filename, a.content_type) for a in p.attachments]
    assert names == [("invoice.zip", "application/zip"), ("setup.exe", "application/x-msdownload")]
    # The compressed size, not the 50 MB it would inflate to: it was never opened.
    assert p.attachments[0].size < 100_000


def test_filenames_lose_paths_and_control_characters():
    assert inbound.safe_filename("../../etc/passwd") == "passwd"
    assert inbound.safe_filename("..\\..\\boot.ini") == "boot.ini"
    assert inbound.safe_filename("a\r\nb;rm -rf $HOME.txt") == "a b_rm -rf _HOME.txt"
    assert inbound.safe_filename("...") == "attachment"


def test_broken_mime_is_read_as_far_as_possible(channel):
    p = read("broken_mime.eml")
    assert p.text.startswith("Hello world")
    payload = store(channel, "broken_mime.eml")
    assert payload.status == PayloadStatus.PROCESSED
    assert Message.objects.get().external_id == "broken-mime@example.net"


def test_not_an_email_goes_to_the_dead_letter_list(channel):
    payload = store(channel, "not_email.txt")
    assert payload.status == PayloadStatus.DEAD
    assert "no email headers" in payload.error


def test_empty_body_goes_to_the_dead_letter_list(channel):
    payload, _ = payload_store(channel=channel, body=b"\r\n\r\n", headers={})
    process_payload(payload.pk)
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.DEAD and "empty" in payload.error


def test_hostile_html_is_stored_sanitised(channel):
    payload = store(channel, "hostile_html.eml")
    assert payload.status == PayloadStatus.PROCESSED
    html = Message.objects.get().html
    for bad in (
        "<script",
        "onload",
        "onerror",
        "onclick",
        "javascript:",
        "data:",
        "<base",
        "<svg",
        "<iframe",
        "<style",
        "<img",
    ):
        assert bad not in html.lower(), (bad, html)
    assert '<a href="https://example.org/ok" rel="noopener noreferrer nofollow">fine link</a>' in html
    text = Message.objects.get().text
    assert "alert" not in text


def test_forwarded_message_text_is_quoted_in_the_body():
    raw = (
        b"From: Jane <jane@example.org>\r\nSubject: Fwd: hi\r\nMessage-ID: <fw@example.org>\r\n"
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n'
        b"--m\r\nContent-Type: message/rfc822\r\n\r\nFrom: Bob <bob@example.com>\r\nSubject: hi\r\n\r\nOriginal text\r\n--m--\r\n"
    )
    p = inbound.read(raw, received=NOW)
    assert p.text.startswith("See below.")
    assert "---------- Forwarded message ----------\nOriginal text" in p.text
    assert len(p.forwarded) == 1


def test_malformed_addresses_do_not_crash_and_are_skipped():
    raw = b'From: "unterminated <@@@>, =?utf-8?q?=0A?= <a@b@c>\r\nTo: ,,,;;; <>\r\nMessage-ID: <addr@example.org>\r\n\r\nbody\r\n'
    p = inbound.read(raw, received=NOW)
    assert p.to == []
    assert p.external_id == "addr@example.org"


def test_future_dates_are_clamped_to_the_received_time():
    raw = b"From: a@example.org\r\nDate: Fri, 01 Jan 2100 00:00:00 +0000\r\nMessage-ID: <f@example.org>\r\n\r\nx\r\n"
    assert inbound.read(raw, received=NOW).sent_at == NOW


@pytest.mark.parametrize(("size", "truncated"), [("25000000", True), ("²", False), ("", False)])
def test_truncation_header_is_read_only_when_it_is_a_decimal_number(channel, size, truncated):
    from rapport.channels.models import RawPayload

    body = (FIXTURES / "simple.eml").read_bytes()
    payload = RawPayload(
        channel=channel, body=body, headers={inbound.TRUNCATED_HEADER: size}, received_at=NOW
    )
    assert inbound.read_payload(payload).truncated is truncated
