"""The generic signed webhook: signature, replay window, store-first, duplicates, 503s."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import DatabaseError
from django.test import Client

from rapport.channels.base import SignatureError, TransportError
from rapport.channels.connectors.webhook import signing, transport
from rapport.channels.models import ChannelStatus, PayloadStatus, RawPayload
from rapport.channels.testing import SECRET, fixture, message_event, post_signed, webhook_channel
from rapport.conversations.ingest import process_payload, process_pending
from rapport.conversations.models import Delivery, Direction, Message


@pytest.fixture
def channel(north):
    return webhook_channel(north)


def test_signed_delivery_is_stored_then_becomes_one_message(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(Client(), channel, fixture("message"))
    assert response.status_code == 200, response.content
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.PROCESSED
    assert payload.delivery_id == "sha256:" + __import__("hashlib").sha256(payload.body_bytes).hexdigest()
    msg = Message.objects.get()
    assert msg.external_id == "shop-msg-1001"
    assert msg.author_value == "Jane.Doe@Example.org"
    assert msg.person.identities.get().value == "jane.doe@example.org"
    assert msg.attachments[0]["filename"] == "photo.jpg"
    assert msg.conversation.subject == "Order 4471 arrived damaged"


def test_wrong_signature_is_401_and_stores_nothing(channel):
    response = post_signed(Client(), channel, fixture("message"), secret="not-the-secret")
    assert response.status_code == 401
    assert not RawPayload.objects.exists()
    assert not Message.objects.exists()


def test_missing_signature_headers_are_401(channel):
    response = Client().post(f"/hooks/webhook/{channel.pk}/", data=b"{}", content_type="application/json")
    assert response.status_code == 401
    assert not RawPayload.objects.exists()


def test_body_changed_after_signing_is_401(channel):
    body = json.dumps(fixture("message")).encode()
    headers = signing.sign(SECRET, body)
    response = Client().post(
        f"/hooks/webhook/{channel.pk}/",
        data=body.replace(b"4471", b"9999"),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert not RawPayload.objects.exists()


def test_replay_outside_five_minutes_is_rejected(channel):
    old = int(time.time()) - 301
    assert post_signed(Client(), channel, fixture("message"), timestamp=old).status_code == 401
    future = int(time.time()) + 301
    assert post_signed(Client(), channel, fixture("message"), timestamp=future).status_code == 401
    assert not RawPayload.objects.exists()


def test_verify_accepts_inside_window_and_uses_constant_time_format():
    body = b'{"a":1}'
    headers = signing.sign(SECRET, body, 1_000_000)
    signing.verify(
        SECRET, body, headers["X-Rapport-Timestamp"], headers["X-Rapport-Signature"], now=1_000_299
    )
    with pytest.raises(SignatureError):
        signing.verify(
            SECRET,
            body,
            headers["X-Rapport-Timestamp"],
            headers["X-Rapport-Signature"].upper(),
            now=1_000_000,
        )
    with pytest.raises(SignatureError):
        signing.verify(
            "", body, headers["X-Rapport-Timestamp"], headers["X-Rapport-Signature"], now=1_000_000
        )


def test_unknown_channel_is_404_and_disabled_channel_is_410(channel):
    channel.status = ChannelStatus.DISABLED
    channel.save()
    assert post_signed(Client(), channel, fixture("message")).status_code == 410
    channel.pk = 999999
    assert post_signed(Client(), channel, fixture("message")).status_code == 404
    assert not RawPayload.objects.exists()


def test_get_is_not_allowed(channel):
    assert Client().get(f"/hooks/webhook/{channel.pk}/").status_code == 405


def test_same_delivery_twice_is_one_payload_and_one_message(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_signed(Client(), channel, fixture("message"), delivery="evt_01")
        second = post_signed(Client(), channel, fixture("message"), delivery="evt_01")
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert RawPayload.objects.count() == 1
    assert Message.objects.count() == 1


def test_same_message_in_two_deliveries_is_one_message(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(Client(), channel, fixture("message"), delivery="a")
        post_signed(Client(), channel, fixture("message"), delivery="b")
    assert RawPayload.objects.count() == 2
    assert Message.objects.count() == 1


def test_database_unavailable_answers_503_so_the_sender_retries(channel, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr("rapport.channels.connectors.webhook.views.payload_store", broken)
    response = post_signed(Client(), channel, fixture("message"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"


def test_unknown_event_goes_to_dead_letters_with_the_reason(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(Client(), channel, {"event": "order.refunded", "id": "x"})
    assert response.status_code == 200  # stored: accepted, then found unreadable
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.DEAD
    assert "Unknown event" in payload.error


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1,2,3]",
        json.dumps({"event": "message"}).encode(),
        json.dumps({"event": "message", "message": {"id": "x", "author": "bob"}}).encode(),
        json.dumps(
            {
                "event": "message",
                "message": {"id": "", "text": "t", "author": {"kind": "email", "value": "a@b.co"}},
            }
        ).encode(),
        json.dumps(
            {
                "event": "message",
                "message": {
                    "id": "x",
                    "text": "t",
                    "sent_at": "yesterday",
                    "author": {"kind": "email", "value": "a@b.co"},
                },
            }
        ).encode(),
        json.dumps(
            {
                "event": "message",
                "message": {"id": "x", "text": "", "author": {"kind": "email", "value": "a@b.co"}},
            }
        ).encode(),
    ],
)
def test_unparseable_payloads_are_dead_letters_never_dropped(
    channel, body, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed(Client(), channel, body).status_code == 200
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.DEAD
    assert payload.error
    assert payload.body_bytes == body
    assert not Message.objects.exists()


def test_ping_is_processed_without_a_message(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(Client(), channel, fixture("ping"))
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED
    assert not Message.objects.exists()


def test_oversized_body_is_413(channel):
    body = b'{"event":"message","pad":"' + b"x" * (1024 * 1024) + b'"}'
    assert post_signed(Client(), channel, body).status_code == 413
    assert not RawPayload.objects.exists()


# --- concurrency: ten identical deliveries at once ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_identical_deliveries_store_one_message(north):
    channel = webhook_channel(north)
    body = json.dumps(message_event("dup-1", text="Where is my parcel?")).encode()
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def send() -> None:
        from django.db import connection

        try:
            barrier.wait()
            statuses.append(post_signed(Client(), channel, body, delivery="evt-dup-1").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 10, statuses
    # A sender told 503 retries; do what it would do.
    for status in statuses:
        assert status in (200, 503)
        if status == 503:
            assert post_signed(Client(), channel, body, delivery="evt-dup-1").status_code == 200
    assert RawPayload.objects.count() == 1
    # Processing ran in the requests; where SQLite's shared-cache lock made it fail, the
    # payload is still stored and the recovery sweep finishes it. Either way: one message.
    process_pending()
    for payload in RawPayload.objects.all():
        process_payload(payload.pk)
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED
    assert Message.objects.filter(external_id="dup-1").count() == 1


# --- outbound ---------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(_Receiver.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "remote-77"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE = True
    _Receiver.received, _Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _conversation_with_inbound(channel):
    from rapport.channels.base import Author, CanonicalMessage
    from rapport.conversations.ingest import ingest

    return ingest(
        channel, CanonicalMessage("webhook", "in-1", Author("email", "jane@example.org"), text="Hi")
    ).message.conversation


def test_reply_is_posted_signed_and_marked_sent(north, alice, receiver, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    channel = webhook_channel(north, outbound_url=receiver)
    conv = _conversation_with_inbound(channel)
    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="We are on it.")
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.SENT
    assert reply.external_id == "remote-77"
    headers, body = _Receiver.received[0]
    signing.verify(SECRET, body, headers["X-Rapport-Timestamp"], headers["X-Rapport-Signature"])
    sent = json.loads(body)["message"]
    assert sent["text"] == "We are on it." and sent["in_reply_to"] == "in-1"


def test_revoked_endpoint_fails_permanently_and_disables_the_channel(
    north, alice, admin, receiver, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply
    from rapport.conversations.models import Notification

    _Receiver.status = 401
    channel = webhook_channel(north, outbound_url=receiver)
    conv = _conversation_with_inbound(channel)
    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Hello?")
    reply.refresh_from_db()
    channel.refresh_from_db()
    assert reply.delivery_status == Delivery.FAILED
    assert channel.status == ChannelStatus.ERROR and "401" in channel.last_error
    assert Notification.objects.filter(user=admin, kind="channel_error").exists()


def test_server_error_is_transient_and_kept_queued(
    north, alice, receiver, django_capture_on_commit_callbacks
):
    from rapport.conversations.actions import conversation_reply

    _Receiver.status = 503
    channel = webhook_channel(north, outbound_url=receiver)
    conv = _conversation_with_inbound(channel)
    with django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Hello?")
    reply.refresh_from_db()
    channel.refresh_from_db()
    assert reply.delivery_status == Delivery.QUEUED and reply.delivery_attempts == 1
    assert channel.status == ChannelStatus.ACTIVE


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
    ],
)
def test_outbound_refuses_private_addresses(north, url):
    from rapport.channels import net

    with pytest.raises(TransportError) as exc:
        net.safe_post(url, b"{}", {})
    assert exc.value.permanent


def test_note_is_never_sent(north, alice, receiver, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_note

    channel = webhook_channel(north, outbound_url=receiver)
    conv = _conversation_with_inbound(channel)
    with django_capture_on_commit_callbacks(execute=True):
        note = conversation_note(actor=alice, conversation=conv, text="Internal only")
    assert note.direction == Direction.NOTE
    assert _Receiver.received == []
    assert transport  # the module under test is importable lazily through the registry
