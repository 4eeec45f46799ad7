"""Inbox API: scoping, writes, channels (admin, write-only credentials), dead letters."""

import pytest

from conftest import login
from rapport.channels.actions import payload_store
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.models import Channel, PayloadStatus
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest, process_payload
from rapport.conversations.models import Direction, Message


@pytest.fixture
def channel(north):
    return webhook_channel(north)


@pytest.fixture
def conv(channel):
    return ingest(
        channel, CanonicalMessage("webhook", "m1", Author("email", "jane@example.org"), text="Help <b>")
    ).message.conversation


def test_list_and_detail_are_scoped_to_teams(conv, alice_client, bob_client):
    items = alice_client.get("/api/v1/conversations?view=all").json()["items"]
    assert [c["id"] for c in items] == [conv.pk]
    assert bob_client.get("/api/v1/conversations?view=all").json()["items"] == []
    assert bob_client.get(f"/api/v1/conversations/{conv.pk}").status_code == 404
    detail = alice_client.get(f"/api/v1/conversations/{conv.pk}").json()
    assert detail["messages"][0]["text"] == "Help <b>"


def test_note_reply_assign_status_priority(conv, alice, carol, alice_client, monkeypatch):
    monkeypatch.setattr("rapport.channels.connectors.webhook.transport.send", lambda ch, m: "out-1")
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/notes", {"text": "inside"}, content_type="application/json"
    )
    assert r.status_code == 201 and r.json()["direction"] == "note"
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/reply", {"text": "outside"}, content_type="application/json"
    )
    assert r.status_code == 201 and r.json()["delivery_status"] == "queued"
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/assign", {"assignee": carol.pk}, content_type="application/json"
    )
    assert r.json()["assignee"]["id"] == carol.pk
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/status", {"status": "nope"}, content_type="application/json"
    )
    assert r.status_code == 400 and "status" in r.json()["errors"]
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/priority", {"priority": "high"}, content_type="application/json"
    )
    assert r.json()["priority"] == "high"
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


def test_writes_by_outsiders_change_nothing(conv, bob_client):
    r = bob_client.post(
        f"/api/v1/conversations/{conv.pk}/notes", {"text": "x"}, content_type="application/json"
    )
    assert r.status_code == 404
    assert conv.messages.count() == 1


def test_unknown_fields_are_refused(conv, alice_client):
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/notes",
        {"text": "x", "conversation": 5},
        content_type="application/json",
    )
    assert r.status_code == 422


def test_channels_are_admin_only_and_credentials_write_only(admin, alice_client, north):
    assert alice_client.get("/api/v1/channels").status_code == 404
    assert (
        alice_client.post(
            "/api/v1/channels", {"kind": "webhook", "name": "x"}, content_type="application/json"
        ).status_code
        == 404
    )
    client = login(admin)
    r = client.post(
        "/api/v1/channels",
        {"kind": "webhook", "name": "Shop", "team": north.pk, "credentials": {"secret": "s3cr3t-value"}},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["has_credentials"] and "s3cr3t-value" not in r.content.decode()
    channel = Channel.objects.get(pk=body["id"])
    assert "s3cr3t-value" not in channel.credentials_encrypted  # encrypted at rest
    assert channel.credentials == {"secret": "s3cr3t-value"}
    r = client.patch(
        f"/api/v1/channels/{channel.pk}", {"status": "disabled"}, content_type="application/json"
    )
    assert r.json()["status"] == "disabled"
    assert (
        client.post(
            "/api/v1/channels", {"kind": "fax", "name": "x"}, content_type="application/json"
        ).status_code
        == 400
    )
    assert client.delete(f"/api/v1/channels/{channel.pk}").status_code == 204


def test_credentials_key_comes_from_the_environment(monkeypatch, north):
    channel = webhook_channel(north)
    monkeypatch.setenv("RAPPORT_CREDENTIALS_KEY", "another-key")
    from rapport.channels.crypto import CredentialsError

    with pytest.raises(CredentialsError):
        _ = Channel.objects.get(pk=channel.pk).credentials


def test_dead_letter_list_and_replay(channel, admin, alice_client, django_capture_on_commit_callbacks):
    payload, _ = payload_store(channel=channel, body=b'{"event": "weird"}', headers={})
    process_payload(payload.pk)
    assert alice_client.get("/api/v1/dead-letters").status_code == 404
    client = login(admin)
    items = client.get("/api/v1/dead-letters").json()["items"]
    assert items[0]["id"] == payload.pk and "Unknown event" in items[0]["error"]
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/v1/dead-letters/{payload.pk}/replay")
    assert r.status_code == 200
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.DEAD and payload.attempts == 1  # still unreadable, still kept


@pytest.mark.parametrize("text", ["x" * 20001, "nul\x00byte"])
def test_oversized_or_nul_reply_is_refused_and_nothing_is_queued(conv, alice_client, text):
    r = alice_client.post(
        f"/api/v1/conversations/{conv.pk}/reply", {"text": text}, content_type="application/json"
    )
    assert r.status_code == 422
    assert conv.messages.count() == 1
