"""Text responses are gzipped for clients that accept it (core.middleware.GZipMiddleware):
the same bytes once decompressed, a varying length (BREACH), binary downloads untouched."""

import gzip

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from rapport.core.middleware import GZipMiddleware

pytestmark = pytest.mark.django_db


def _run(body: bytes, content_type: str = "text/html; charset=utf-8", accept: str = "gzip, deflate, br"):
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING=accept)
    return GZipMiddleware(lambda r: HttpResponse(body, content_type=content_type))(request)


def test_html_is_compressed_and_decompresses_to_the_same_bytes():
    body = b"<tr><td>Ann Lee</td></tr>" * 400
    response = _run(body)
    assert response["Content-Encoding"] == "gzip" and "Accept-Encoding" in response["Vary"]
    assert gzip.decompress(response.content) == body
    assert int(response["Content-Length"]) == len(response.content) < len(body) / 5


def test_length_varies_between_responses():
    body = b"<p>secret-ish page</p>" * 200
    assert len({len(_run(body).content) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    ("body", "content_type", "accept"),
    [
        (b"x" * 5000, "text/html", ""),  # the client did not ask
        (b"x" * 5000, "text/html", "identity"),
        (b"x" * 100, "text/html", "gzip"),  # too small to gain
        (b"\x89PNG" + b"x" * 5000, "image/png", "gzip"),  # binary: already compressed or not ours to touch
        (b"PK" + b"x" * 5000, "application/octet-stream", "gzip"),
    ],
)
def test_left_alone(body, content_type, accept):
    response = _run(body, content_type, accept)
    assert not response.has_header("Content-Encoding") and response.content == body


def test_pages_arrive_compressed_through_the_whole_stack(alice_client):
    response = alice_client.get("/people/", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert b"People" in gzip.decompress(response.content)
    assert alice_client.get("/api/v1/openapi.json", HTTP_ACCEPT_ENCODING="gzip")["Content-Encoding"] == "gzip"
