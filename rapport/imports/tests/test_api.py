"""The import flow and exports over the REST API with a bearer token."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from rapport.accounts.models import ApiToken
from rapport.people.actions import person_create
from rapport.people.models import Person


def _client(user) -> tuple[Client, dict]:
    _, raw = ApiToken.issue(user=user)
    return Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_api_import_flow_from_upload_to_error_report(alice):
    client, auth = _client(alice)
    content = b"Name;Email\nAda Lovelace;ada@example.org\nBad;nope\n"
    response = client.post(
        "/api/v1/imports", {"kind": "people", "file": SimpleUploadedFile("p.csv", content)}, **auth
    )
    assert response.status_code == 201, response.content
    job = response.json()
    assert [c["target"] for c in job["columns"]] == ["full_name", "email"]
    response = client.put(
        f"/api/v1/imports/{job['id']}/mapping",
        {"mapping": ["full_name", "email"], "on_duplicate": "merge", "visibility": "private"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200, response.content
    job = response.json()
    assert (
        job["status"] == "analysed"
        and job["progress"]["dry_new"] == 1
        and job["progress"]["dry_invalid"] == 1
    )
    assert not Person.objects.exists()
    job = client.post(f"/api/v1/imports/{job['id']}/start", **auth).json()
    assert job["status"] == "done" and job["progress"]["created"] == 1
    ada = Person.objects.get()
    assert (ada.first_name, ada.last_name, ada.visibility) == ("Ada", "Lovelace", "private")
    report = client.get(f"/api/v1/imports/{job['id']}/errors.csv", **auth)
    assert report.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[1][0] == "3"


def test_api_import_errors_are_json(alice, reader, bob):
    client, auth = _client(alice)
    response = client.post(
        "/api/v1/imports", {"kind": "people", "file": SimpleUploadedFile("e.csv", b"\x00\x01" * 100)}, **auth
    )
    assert response.status_code == 400 and "binary" in response.json()["detail"]
    response = client.post(
        "/api/v1/imports",
        {"kind": "people", "file": SimpleUploadedFile("p.csv", b"Email\na@b.example\n")},
        **auth,
    )
    job_id = response.json()["id"]
    bad = client.put(
        f"/api/v1/imports/{job_id}/mapping",
        {"mapping": ["nonsense"]},
        content_type="application/json",
        **auth,
    )
    assert bad.status_code == 400 and "mapping" in bad.json()["errors"]
    bob_client, bob_auth = _client(bob)
    assert bob_client.get(f"/api/v1/imports/{job_id}", **bob_auth).status_code == 404
    reader_client, reader_auth = _client(reader)
    refused = reader_client.post(
        "/api/v1/imports",
        {"kind": "people", "file": SimpleUploadedFile("p.csv", b"Email\na@b.example\n")},
        **reader_auth,
    )
    assert refused.status_code == 400 and "read-only" in refused.json()["detail"]


def test_api_export_uses_the_same_visibility(alice, bob):
    person_create(actor=alice, first_name="Hidden", visibility="private")
    person_create(actor=alice, first_name="Open", visibility="everyone")
    client, auth = _client(bob)
    response = client.get("/api/v1/exports/people?format=csv", **auth)
    assert response.status_code == 200 and response["X-Content-Type-Options"] == "nosniff"
    text = b"".join(response.streaming_content).decode()
    assert "Open" in text and "Hidden" not in text
    assert client.get("/api/v1/exports/people?format=xlsx", **auth).status_code == 200
    assert client.get("/api/v1/exports/people?format=pdf", **auth).status_code == 422
