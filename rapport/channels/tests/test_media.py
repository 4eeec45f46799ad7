"""Attachments: fetched through each platform's documented media API (a local fake at the
network seam), capped, sniffed, quarantined with a reason, retried, stored from MIME, and
served only to people who can see the conversation, with the safe headers."""

import base64
import hashlib
import http.server
import io
import json
import threading
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from rapport.accounts.models import ApiToken
from rapport.channels import media
from rapport.channels.connectors.meta.testing import load, make_channel
from rapport.channels.models import Channel, MediaState, RawPayload, StoredMedia
from rapport.conversations.ingest import ingest, process_payload
from rapport.conversations.models import Message

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 200 + b"\xff\xd9"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>fetch('/api/v1/people')</script></body></html>"
EMAIL_FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "email" / "fixtures"
TWILIO_FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "twilio" / "fixtures"
SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"


class FakeStream:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.status, self.headers = status, {k.lower(): v for k, v in headers.items()}
        self._body = io.BytesIO(body)
        self.read_bytes = 0

    def read(self, size: int) -> bytes:
        chunk = self._body.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class FakeMedia:
    """The platforms' media endpoints: URL → queue of (status, body, headers), the last one
    repeating; every request is recorded with its headers."""

    def __init__(self, routes: dict[str, list[tuple[int, bytes, dict[str, str]]]]):
        self.routes = routes
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.streams: list[FakeStream] = []

    def __call__(self, url: str, headers: dict[str, str], timeout: float) -> FakeStream:
        self.calls.append((url, headers))
        answers = self.routes.get(url)
        if not answers:
            return FakeStream(404, b"not found", {})
        status, body, hdrs = answers.pop(0) if len(answers) > 1 else answers[0]
        stream = FakeStream(status, body, hdrs)
        self.streams.append(stream)
        return stream


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def fetch(django_capture_on_commit_callbacks):
    """Queue a message's attachments the way the pipeline does and run the task (the test
    settings use the immediate task backend)."""

    def _fetch(message: Message, fake: FakeMedia | None = None) -> list[StoredMedia]:
        with media.use_transport(fake or FakeMedia({})), django_capture_on_commit_callbacks(execute=True):
            media.enqueue_for_message(message.pk)
        return list(StoredMedia.objects.filter(message=message).order_by("index"))

    return _fetch


def _store(channel: Channel, body: bytes, **headers: str) -> Message:
    """Through the real pipeline, as the webhook view's task would."""
    payload = RawPayload.objects.create(channel=channel, body=body, headers=headers)
    [result] = process_payload(payload.pk)
    return result.message


def _plain(channel: Channel, *attachments: dict[str, Any]) -> Message:
    """A message from a connector whose attachment URLs are fetched as they are (Mastodon)."""
    from rapport.channels.base import Attachment, Author, CanonicalMessage

    cm = CanonicalMessage(
        "mastodon",
        f"st-{Message.objects.count()}",
        Author("mastodon", "jane@mastodon.example"),
        text="see attached",
        attachments=tuple(Attachment(**a) for a in attachments),
    )
    return ingest(channel, cm).message


@pytest.fixture
def mastodon(north):
    return make_channel(
        "mastodon", north, access_token="masto-token", settings={"instance": "https://mastodon.example"}
    )


def _mms() -> bytes:
    return (TWILIO_FIXTURES / "mms.form").read_bytes().strip()


def _read(row: StoredMedia) -> bytes:
    with row.file.open("rb") as fh:
        return fh.read()


# --- WhatsApp and Twilio: the documented media APIs -------------------------------------------


def test_whatsapp_media_is_fetched_with_get_media_id_then_the_url_with_the_bearer_token(north, fetch):
    channel = make_channel(
        "whatsapp", north, app_secret="s", access_token="EAAW-token", phone_number_id="106540352242922"
    )
    message = _store(channel, load("whatsapp", "image_reply.json"))
    cdn = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1479537139650973&ext=1717423260"
    info = {
        "messaging_product": "whatsapp",
        "url": cdn,
        "mime_type": "image/jpeg",
        "sha256": hashlib.sha256(JPEG).hexdigest(),
        "file_size": len(JPEG),
        "id": "1479537139650973",
    }
    fake = FakeMedia(
        {
            "https://graph.facebook.com/v21.0/1479537139650973": [(200, json.dumps(info).encode(), {})],
            cdn: [(200, JPEG, {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG))})],
        }
    )

    [row] = fetch(message, fake)

    assert [url for url, _ in fake.calls] == ["https://graph.facebook.com/v21.0/1479537139650973", cdn]
    assert all(h["Authorization"] == "Bearer EAAW-token" for _, h in fake.calls)
    assert row.state == MediaState.STORED and row.error == ""
    assert (row.content_type, row.size, row.sha256) == ("image/jpeg", len(JPEG), info["sha256"])
    assert row.filename == "image-1479537139650973" and row.inline_ok
    assert _read(row) == JPEG
    assert "1479537139650973" not in row.file.name  # stored under a random name


def test_twilio_mms_is_fetched_with_basic_auth_and_the_cdn_redirect_does_not_get_it(north, fetch):
    channel = make_channel("sms", north, account_sid=SID, auth_token="tw-token", from_number="+15017122661")
    message = _store(channel, _mms(), **{"X-Rapport-Event": "sms"})
    api = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d/Media/ME0123456789abcdef0123456789abcdef"
    cdn = "https://s3-external-1.amazonaws.com/media.twiliocdn.com/ACa1b2/abc123"
    fake = FakeMedia(
        {api: [(307, b"", {"Location": cdn})], cdn: [(200, JPEG, {"Content-Type": "image/jpeg"})]}
    )

    [row] = fetch(message, fake)

    expected = "Basic " + base64.b64encode(f"{SID}:tw-token".encode()).decode()
    assert fake.calls[0] == (api, {"User-Agent": "Rapport/1", "Authorization": expected})
    assert fake.calls[1][0] == cdn and "Authorization" not in fake.calls[1][1]
    assert row.state == MediaState.STORED and _read(row) == JPEG


def test_a_twilio_channel_without_credentials_fails_with_the_reason_and_no_request(north, fetch):
    channel = make_channel("sms", north)
    message = _store(channel, _mms(), **{"X-Rapport-Event": "sms"})
    fake = FakeMedia({})
    [row] = fetch(message, fake)
    assert row.state == MediaState.FAILED and "no account SID" in row.error and fake.calls == []


# --- limits and quarantine --------------------------------------------------------------------


def test_a_download_over_the_cap_is_aborted_while_streaming_and_quarantined(settings, mastodon, fetch):
    settings.RAPPORT_MEDIA_MAX_BYTES = 100_000
    url = "https://files.mastodon.example/big.bin"
    message = _plain(mastodon, {"filename": "big.bin", "url": url})
    # No Content-Length: the cap is found while reading, and reading stops right there.
    fake = FakeMedia({url: [(200, b"\x00" * 5_000_000, {"Content-Type": "application/octet-stream"})]})

    [row] = fetch(message, fake)

    assert row.state == MediaState.QUARANTINED and "limit" in row.reason and not row.file
    assert fake.streams[0].read_bytes <= 100_000 + media.CHUNK


def test_a_declared_size_over_the_cap_is_refused_before_reading(settings, mastodon, fetch):
    settings.RAPPORT_MEDIA_MAX_BYTES = 1000
    url = "https://files.mastodon.example/declared.bin"
    message = _plain(mastodon, {"filename": "declared.bin", "url": url})
    fake = FakeMedia({url: [(200, b"x" * 5000, {"Content-Length": "26214400"})]})
    [row] = fetch(message, fake)
    assert row.state == MediaState.QUARANTINED and fake.streams[0].read_bytes == 0


class _BigFile(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            for _ in range(400):  # 25.6 MB, never announced
                self.wfile.write(b"\x00" * 65536)
        except OSError:
            pass  # the client hung up at the cap: what we test

    def log_message(self, *args):
        pass


def test_the_real_network_path_streams_and_aborts_at_the_cap(settings, mastodon, fetch):
    """The pinned-connection transport against a local HTTP server (private addresses are
    allowed only in this test, as on an on-premises install)."""
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE = True
    settings.RAPPORT_MEDIA_MAX_BYTES = 1024 * 1024
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BigFile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/video.mp4"
        message = _plain(mastodon, {"filename": "video.mp4", "url": url})
        with media.use_transport(media._network):
            media.enqueue_for_message(message.pk)
            row = StoredMedia.objects.get(message=message)
            media.fetch_one(row)
        row.refresh_from_db()
    finally:
        server.shutdown()
        server.server_close()
    assert row.state == MediaState.QUARANTINED and "1 MB limit" in row.reason


def test_private_addresses_are_refused_by_default(mastodon):
    message = _plain(mastodon, {"filename": "x.png", "url": "http://127.0.0.1:9/x.png"})
    media.enqueue_for_message(message.pk)
    row = StoredMedia.objects.get(message=message)
    with media.use_transport(media._network):
        media.fetch_one(row)
    row.refresh_from_db()
    assert row.state == MediaState.FAILED and "non-public address" in row.error


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * (30 * 1024 * 1024))
    return buffer.getvalue()


def test_a_zip_bomb_is_quarantined_by_its_declared_size_without_unpacking(mastodon, fetch):
    url = "https://files.mastodon.example/invoice.zip"
    message = _plain(mastodon, {"filename": "invoice.zip", "content_type": "application/zip", "url": url})
    bomb = _bomb()
    [row] = fetch(message, FakeMedia({url: [(200, bomb, {})]}))
    assert row.state == MediaState.QUARANTINED and row.reason.startswith("Archive bomb: declares 30 MB")
    assert row.content_type == "application/zip" and _read(row) == bomb  # kept, as a download only


def test_an_ordinary_zip_and_an_office_document_are_stored(mastodon, fetch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document/>" * 50)
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    url1, url2 = "https://files.mastodon.example/a.zip", "https://files.mastodon.example/b.docx"
    message = _plain(
        mastodon,
        {"filename": "a.zip", "url": url1},
        {"filename": "b.docx", "content_type": docx, "url": url2},
    )
    rows = fetch(
        message, FakeMedia({url1: [(200, buffer.getvalue(), {})], url2: [(200, buffer.getvalue(), {})]})
    )
    assert [(r.state, r.content_type) for r in rows] == [
        (MediaState.STORED, "application/zip"),
        (MediaState.STORED, docx),
    ]


@pytest.mark.parametrize(
    ("name", "declared", "body", "why"),
    [
        ("logo.svg", "image/*", SVG, "image/svg+xml"),
        ("photo.png", "image/png", HTML, "text/html"),  # the declared type lies; the bytes tell
        ("page.htm", "application/octet-stream", b"just text", ".htm"),
        ("a.txt", "application/javascript", b"alert(1)", "application/javascript"),
    ],
)
def test_active_content_is_quarantined_and_only_ever_a_download(
    mastodon, fetch, alice_client, name, declared, body, why
):
    url = "https://files.mastodon.example/" + name
    message = _plain(mastodon, {"filename": name, "content_type": declared, "url": url})
    [row] = fetch(message, FakeMedia({url: [(200, body, {"Content-Type": "image/png"})]}))

    assert row.state == MediaState.QUARANTINED and why in row.reason and not row.inline_ok
    response = alice_client.get(f"/attachments/{row.pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == body
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert alice_client.get(f"/attachments/{row.pk}/inline/").status_code == 404


def test_only_magic_verified_raster_images_are_inline(mastodon, fetch, alice_client):
    url = "https://files.mastodon.example/p.png"
    message = _plain(mastodon, {"filename": "p.png", "content_type": "image/*", "url": url})
    [row] = fetch(message, FakeMedia({url: [(200, PNG, {"Content-Type": "text/html"})]}))
    assert row.inline_ok and row.content_type == "image/png"
    response = alice_client.get(f"/attachments/{row.pk}/inline/")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline;")
    assert (
        response["X-Content-Type-Options"] == "nosniff" and "sandbox" in response["Content-Security-Policy"]
    )


# --- retries -------------------------------------------------------------------------------


def test_a_transient_error_is_retried_with_backoff_then_succeeds(mastodon, fetch):
    url = "https://files.mastodon.example/flaky.png"
    message = _plain(mastodon, {"filename": "flaky.png", "url": url})
    fake = FakeMedia({url: [(503, b"busy", {"Retry-After": "5"}), (200, PNG, {})]})

    [row] = fetch(message, fake)
    assert row.state == MediaState.PENDING and row.attempts == 1 and "503" in row.error
    assert row.next_attempt_at > row.created_at  # backoff: not due at once

    assert media.fetch_due() == 0  # not due yet
    StoredMedia.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
    out = io.StringIO()
    with media.use_transport(fake):
        call_command("fetch_media", stdout=out)  # the recovery sweep the scheduler runs
    assert out.getvalue().strip() == "attachments fetched 1"
    row.refresh_from_db()
    assert (row.state, row.attempts, row.error) == (MediaState.STORED, 2, "")
    assert _read(row) == PNG


def test_retries_end_in_failed_with_the_last_error(mastodon, fetch):
    url = "https://files.mastodon.example/down.png"
    message = _plain(mastodon, {"filename": "down.png", "url": url})
    fake = FakeMedia({url: [(502, b"", {})]})
    fetch(message, fake)
    for _ in range(media.MAX_ATTEMPTS):
        StoredMedia.objects.filter(message=message).update(next_attempt_at=message.received_at)
        with media.use_transport(fake):
            media.fetch_due()
    row = StoredMedia.objects.get(message=message)
    assert row.state == MediaState.FAILED and row.attempts == media.MAX_ATTEMPTS and "502" in row.error
    assert len(fake.calls) == media.MAX_ATTEMPTS


def test_a_404_fails_at_once_and_can_be_retried_through_the_api(
    mastodon, fetch, alice, django_capture_on_commit_callbacks
):
    url = "https://files.mastodon.example/gone.png"
    message = _plain(mastodon, {"filename": "gone.png", "url": url})
    [row] = fetch(message, FakeMedia({url: [(404, b"", {})]}))
    assert row.state == MediaState.FAILED and row.attempts == 1

    client = Client(headers={"Authorization": f"Bearer {ApiToken.issue(user=alice)[1]}"})
    with (
        media.use_transport(FakeMedia({url: [(200, PNG, {})]})),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/api/v1/attachments/{row.pk}/retry")
    assert response.status_code == 200, response.content
    row.refresh_from_db()
    assert row.state == MediaState.STORED
    again = client.post(f"/api/v1/attachments/{row.pk}/retry")
    assert again.status_code == 400


def test_queueing_twice_adds_nothing_and_a_claimed_row_is_not_fetched_twice(mastodon):
    message = _plain(mastodon, {"filename": "a.png", "url": "https://files.mastodon.example/a.png"})
    assert media.enqueue_for_message([message.pk]) == 1
    media.enqueue_for_message([message.pk, message.pk])
    assert StoredMedia.objects.filter(message=message).count() == 1
    first, second = StoredMedia.objects.get(), StoredMedia.objects.get()
    assert media._claim(first) and not media._claim(second)


def test_the_pipeline_queues_attachments_of_the_messages_it_stores(north, django_capture_on_commit_callbacks):
    """Batch.flush_messages hands its Message objects (bulk-inserted, so without ids on some
    databases) to enqueue_for_message in the storing transaction; the fetch runs on commit."""
    from rapport.conversations.ingest import process_batch

    channel = make_channel("whatsapp", north, access_token="t", phone_number_id="1")
    RawPayload.objects.create(channel=channel, body=load("whatsapp", "image_reply.json"))
    RawPayload.objects.create(channel=channel, body=load("whatsapp", "text.json"))
    with media.use_transport(FakeMedia({})), django_capture_on_commit_callbacks(execute=True):
        assert process_batch().created == 2
    row = StoredMedia.objects.get()  # the text message has nothing to fetch
    assert row.message.attachments[0]["url"] == "whatsapp-media:1479537139650973"
    assert row.state == MediaState.FAILED and "HTTP 404" in row.error  # the fake knows no media
    as_in_the_batch = [
        Message(channel_id=m.channel_id, external_id=m.external_id, attachments=m.attachments)
        for m in Message.objects.all()
    ]
    media.enqueue_for_message(as_in_the_batch)
    assert StoredMedia.objects.count() == 1  # seen twice: nothing added


# --- email: the bytes are in the MIME message ------------------------------------------------


@pytest.fixture
def email_channel(north):
    channel = Channel(kind="email", name="Support mailbox", team=north)
    channel.credentials = {}
    channel.save()
    return channel


def test_email_attachments_are_stored_from_the_mime_parts(email_channel, fetch):
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Jane <jane@example.org>", "support@rapport.test", "Broken"
    mail["Message-ID"] = "<att1@example.org>"
    mail.set_content("Photos attached.")
    mail.add_attachment(PNG, maintype="image", subtype="png", filename="../../lid.png")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    mail.add_attachment(SVG, maintype="image", subtype="svg+xml", filename="logo.svg")
    message = _store(email_channel, mail.as_bytes())

    rows = fetch(message)

    assert [(r.filename, r.state, r.content_type) for r in rows] == [
        ("lid.png", MediaState.STORED, "image/png"),
        ("invoice.pdf", MediaState.STORED, "application/pdf"),
        ("logo.svg", MediaState.QUARANTINED, "image/svg+xml"),
    ]
    assert [_read(r) for r in rows] == [PNG, b"%PDF-1.4 invoice", SVG]


def test_the_zip_bomb_fixture_arrives_by_email_and_is_quarantined(email_channel, fetch):
    message = _store(email_channel, (EMAIL_FIXTURES / "zip_bomb.eml").read_bytes())
    bomb, program = fetch(message)
    assert bomb.filename == "invoice.zip"  # no ../ from the sender's name
    assert bomb.state == MediaState.QUARANTINED and "Archive bomb" in bomb.reason
    assert (program.filename, program.content_type) == ("setup.exe", "application/x-msdownload")
    assert program.state == MediaState.QUARANTINED and "program" in program.reason


# --- access: the conversation's ---------------------------------------------------------------


@pytest.fixture
def stored(mastodon, fetch):
    url = "https://files.mastodon.example/secret.png"
    message = _plain(mastodon, {"filename": "secret.png", "url": url}, {"filename": "later.pdf", "url": ""})
    rows = fetch(message, FakeMedia({url: [(200, PNG, {})]}))
    return message, rows


def test_a_user_of_another_team_gets_404_and_no_bytes(stored, bob_client, bob):
    message, [row, _] = stored
    for path in (f"/attachments/{row.pk}/", f"/attachments/{row.pk}/inline/"):
        response = bob_client.get(path)
        assert response.status_code == 404 and PNG not in response.content
    client = Client(headers={"Authorization": f"Bearer {ApiToken.issue(user=bob)[1]}"})
    assert client.get(f"/api/v1/attachments/{row.pk}/download").status_code == 404
    conv = message.conversation_id
    assert client.get(f"/api/v1/conversations/{conv}/messages/{message.pk}/attachments").status_code == 404
    assert client.post(f"/api/v1/attachments/{row.pk}/retry").status_code == 404
    assert Client().get(f"/attachments/{row.pk}/").status_code == 302  # to the login page


def test_the_api_lists_a_messages_attachments_and_downloads_one(stored, alice):
    message, [row, failed] = stored
    client = Client(headers={"Authorization": f"Bearer {ApiToken.issue(user=alice)[1]}"})
    response = client.get(
        f"/api/v1/conversations/{message.conversation_id}/messages/{message.pk}/attachments"
    )
    assert response.status_code == 200
    first, second = response.json()
    assert first["state"] == "stored" and first["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert first["inline_url"] == f"/attachments/{row.pk}/inline/"
    assert second["state"] == "failed" and second["download_url"] is None and second["error"]
    download = client.get(first["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"


def test_the_conversation_page_shows_thumbnails_links_sizes_and_reasons(stored, alice_client):
    message, [row, failed] = stored
    page = alice_client.get(f"/inbox/{message.conversation_id}/").content.decode()
    assert f'src="/attachments/{row.pk}/inline/"' in page
    assert f'href="/attachments/{row.pk}/"' in page and "secret.png" in page
    assert "later.pdf" in page and "Failed" in page and failed.error in page


def test_a_failed_attachment_can_be_fetched_again_from_the_page(
    stored, alice_client, reader, django_capture_on_commit_callbacks
):
    message, [_, failed] = stored
    page = alice_client.get(f"/inbox/{message.conversation_id}/").content.decode()
    assert f'action="/attachments/{failed.pk}/retry/"' in page
    assert Client().get(f"/attachments/{failed.pk}/retry/").status_code in (302, 405)
    from conftest import login

    assert login(reader).post(f"/attachments/{failed.pk}/retry/").status_code == 404  # read-only
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/attachments/{failed.pk}/retry/")
    assert response.status_code == 302 and response["Location"].endswith(f"#m{message.pk}")
    failed.refresh_from_db()
    assert failed.state == MediaState.FAILED and failed.attempts == 1  # fetched again, still no URL


def test_deleting_the_message_deletes_its_files(stored, media_root, django_capture_on_commit_callbacks):
    message, [row, _] = stored
    path = Path(row.file.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        message.delete()
    assert not path.exists() and not StoredMedia.objects.exists()


# --- the sniffer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "ctype"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"  \n<svg onload=alert(1)>", "image/svg+xml"),
        (b"\xef\xbb\xbf<!doctype html><p>", "text/html"),
        (b"<?xml version='1.0'?><a/>", "text/xml"),
        (b"hello, world", "text/plain"),
        (b"\x00\x01\x02\x03", ""),
    ],
)
def test_sniff_goes_by_magic_bytes(head, ctype):
    assert media.sniff(head) == ctype


def test_x_sends_the_token_only_to_its_private_dm_media_host(north, fetch):
    channel = make_channel("x", north, access_token="x-token", user_id="1")
    public, dm = "https://pbs.twimg.com/media/Fabc.jpg", "https://ton.twitter.com/1.1/ton/data/dm/1/2/abc.jpg"
    from rapport.channels.base import Attachment, Author, CanonicalMessage

    cm = CanonicalMessage(
        "x",
        "dm-1",
        Author("x", "jane"),
        text="look",
        attachments=(Attachment("a", url=public), Attachment("b", url=dm)),
    )
    message = ingest(channel, cm).message
    fake = FakeMedia({public: [(200, JPEG, {})], dm: [(200, JPEG, {})]})
    rows = fetch(message, fake)
    assert [r.state for r in rows] == [MediaState.STORED, MediaState.STORED]
    assert "Authorization" not in fake.calls[0][1]
    assert fake.calls[1][1]["Authorization"] == "Bearer x-token"


def test_a_demo_channel_fetches_nothing_and_says_why(north, fetch):
    channel = make_channel("mastodon", north, settings={"demo": True})
    message = _plain(channel, {"filename": "a.png", "url": "https://files.mastodon.example/a.png"})
    fake = FakeMedia({})
    [row] = fetch(message, fake)
    assert row.state == MediaState.FAILED and "demo" in row.error and fake.calls == []


def test_a_batch_queues_one_fetch_job_per_chunk_of_messages_and_each_is_fetched(
    mastodon, django_capture_on_commit_callbacks, monkeypatch
):
    """An ingest batch's messages with attachments go to the queue in chunks (one job, one
    write in the database queue, per chunk), and every message of a chunk is fetched."""
    from rapport.channels import tasks

    queued = []
    real = tasks.fetch_messages_media

    class Recording:
        def enqueue(self, ids):
            queued.append(ids)
            return real.enqueue(ids)

    monkeypatch.setattr(tasks, "fetch_messages_media", Recording())
    monkeypatch.setattr(media, "QUEUE_CHUNK", 2)
    urls = [f"https://files.mastodon.example/{i}.jpg" for i in range(3)]
    messages = [_plain(mastodon, {"filename": f"{i}.jpg", "url": url}) for i, url in enumerate(urls)]
    fake = FakeMedia({url: [(200, JPEG, {"Content-Type": "image/jpeg"})] for url in urls})
    with media.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        assert media.enqueue_for_message([m.pk for m in messages]) == 3
    assert queued == [[messages[0].pk, messages[1].pk], [messages[2].pk]]
    assert sorted(StoredMedia.objects.values_list("state", flat=True)) == [MediaState.STORED] * 3
