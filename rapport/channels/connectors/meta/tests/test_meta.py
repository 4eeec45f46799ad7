"""Shared Meta plumbing: handshake, X-Hub-Signature-256, the HTTP seam's error classes."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client

from rapport.channels.base import SignatureError
from rapport.channels.connectors.meta import http, signing
from rapport.channels.connectors.meta.testing import APP_SECRET, VERIFY_TOKEN, make_channel
from rapport.channels.models import RawPayload


def test_handshake_echoes_the_challenge_only_for_the_right_token():
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    assert signing.handshake(params, VERIFY_TOKEN) == "1158201444"
    with pytest.raises(SignatureError):
        signing.handshake({**params, "hub.verify_token": "guess"}, VERIFY_TOKEN)
    with pytest.raises(SignatureError):
        signing.handshake({**params, "hub.mode": "unsubscribe"}, VERIFY_TOKEN)
    with pytest.raises(SignatureError):
        signing.handshake(params, "")  # an unconfigured channel accepts no token


def test_signature_is_hmac_sha256_of_the_raw_body():
    body = b'{"object":"page","entry":[]}'
    header = signing.sign(APP_SECRET, body)
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    signing.verify(APP_SECRET, body, header)
    for bad in ("", "sha1=abc", header.upper(), signing.sign("other", body)):
        with pytest.raises(SignatureError):
            signing.verify(APP_SECRET, body, bad)
    with pytest.raises(SignatureError):
        signing.verify(APP_SECRET, body + b" ", header)


@pytest.mark.parametrize("kind", ["facebook", "instagram", "whatsapp"])
def test_handshake_view_answers_the_challenge_and_stores_nothing(kind, north):
    channel = make_channel(kind, north, verify_token=VERIFY_TOKEN, app_secret=APP_SECRET)
    url = f"/hooks/{kind}/{channel.pk}/"
    ok = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"})
    assert ok.status_code == 200 and ok.content == b"42"
    bad = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"})
    assert bad.status_code == 403
    assert not RawPayload.objects.exists()


def test_a_channel_of_another_kind_is_404(north):
    channel = make_channel("facebook", north, app_secret=APP_SECRET)
    assert (
        Client()
        .post(f"/hooks/whatsapp/{channel.pk}/", data=b"{}", content_type="application/json")
        .status_code
        == 404
    )


@pytest.mark.parametrize(
    "status,headers,permanent,wait",
    [
        (401, {}, True, None),
        (403, {}, True, None),
        (429, {"Retry-After": "120"}, False, 120),
        (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, False, 0),
        (500, {}, False, None),
        (404, {}, False, None),
    ],
)
def test_check_classifies_permanent_and_transient(status, headers, permanent, wait):
    resp = http.Response(status, b'{"error":"x"}', {k.lower(): v for k, v in headers.items()})
    with pytest.raises(http.ApiError) as exc:
        http.check(resp, "Platform")
    assert exc.value.permanent is permanent
    assert exc.value.retry_after == wait
    assert exc.value.status == status


def test_x_rate_limit_reset_counts_as_retry_after():
    import time

    resp = http.Response(429, b"", {"x-rate-limit-reset": str(int(time.time()) + 60)})
    assert 58 <= http.retry_after(resp) <= 60


class _Server(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(429)
        self.send_header("Retry-After", "7")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_the_real_seam_talks_http_and_reads_headers(settings):
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE = True
    server = HTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        resp = http.request(
            "POST", f"http://127.0.0.1:{server.server_port}/v21.0/1/messages", json_body={"a": 1}
        )
    finally:
        server.shutdown()
    assert resp.status == 429 and http.retry_after(resp) == 7
    method, path, headers, body = _Server.seen[-1]
    assert (method, path, body) == ("POST", "/v21.0/1/messages", b'{"a":1}')
    assert headers["Content-Type"] == "application/json"


def test_the_real_seam_refuses_private_addresses():
    with pytest.raises(http.ApiError) as exc:
        http.request("GET", "http://127.0.0.1:9/")
    assert exc.value.permanent
