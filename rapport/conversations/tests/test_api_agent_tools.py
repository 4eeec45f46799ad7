"""API for canned answers, bulk, merge/undo, hops, notifications, routing rules and SLAs."""

import pytest

from conftest import login
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from rapport.conversations.models import CannedAnswer, Conversation, RoutingRule, SlaPolicy, Status


@pytest.fixture
def conv(north):
    channel = webhook_channel(north)
    return ingest(
        channel,
        CanonicalMessage("webhook", "m1", Author("email", "jane@example.org", "Jane Doe"), text="Help"),
    ).message.conversation


def _json(client, method, url, data=None):
    return getattr(client, method)(url, data=data, content_type="application/json")


def test_canned_api_crud_and_render(conv, alice_client, bob_client, north):
    r = _json(
        alice_client,
        "post",
        "/api/v1/canned-answers",
        {"title": "hi", "body": "Hello {{first_name}}", "team": north.pk},
    )
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    assert alice_client.get(f"/api/v1/conversations/{conv.pk}/canned-answers/{cid}").json() == {
        "text": "Hello Jane"
    }
    assert bob_client.get("/api/v1/canned-answers").json() == []
    assert (
        _json(bob_client, "put", f"/api/v1/canned-answers/{cid}", {"title": "x", "body": "y"}).status_code
        == 404
    )
    r = _json(alice_client, "post", "/api/v1/canned-answers", {"title": "", "body": "{{nope}}"})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"title", "body"}
    assert alice_client.delete(f"/api/v1/canned-answers/{cid}").status_code == 204
    assert not CannedAnswer.objects.exists()


def test_bulk_merge_hop_api_respect_access(conv, alice_client, bob_client):
    r = _json(bob_client, "post", "/api/v1/conversations/bulk", {"ids": [conv.pk], "action": "close"})
    assert r.status_code == 200 and r.json() == {
        "done": [],
        "skipped": [{"id": conv.pk, "reason": "Not found."}],
    }
    conv.refresh_from_db()
    assert conv.status == Status.NEW
    assert (
        _json(bob_client, "post", f"/api/v1/conversations/{conv.pk}/hop", {"mode": "private"}).status_code
        == 404
    )
    assert _json(bob_client, "post", f"/api/v1/conversations/{conv.pk}/unmerge").status_code == 404
    r = _json(
        alice_client,
        "post",
        "/api/v1/conversations/bulk",
        {"ids": [conv.pk], "action": "priority", "value": "urgent"},
    )
    assert r.json()["done"] == [conv.pk]
    r = _json(alice_client, "post", f"/api/v1/conversations/{conv.pk}/hop", {"mode": "private"})
    assert r.status_code == 400 and "private messages" in r.json()["detail"]


def test_merge_and_unmerge_api(conv, alice_client, north):
    Conversation.objects.filter(pk=conv.pk).update(status=Status.CLOSED)
    channel = conv.reply_channel
    two = ingest(
        channel, CanonicalMessage("webhook", "m2", Author("email", "jane@example.org"), text="Again")
    ).message.conversation
    r = _json(alice_client, "post", f"/api/v1/conversations/{conv.pk}/merge", {"other": two.pk})
    assert r.status_code == 200 and r.json()["status"] == "open"
    two.refresh_from_db()
    assert two.merged_into_id == conv.pk
    r = _json(alice_client, "post", f"/api/v1/conversations/{two.pk}/unmerge")
    assert r.status_code == 200 and two.messages.count() == 1


def test_routing_rules_api(admin, alice_client):
    client = login(admin)
    assert alice_client.get("/api/v1/routing-rules").status_code == 404
    r = _json(
        client,
        "post",
        "/api/v1/routing-rules",
        {"name": "x", "sentiments": ["furious"], "assign_mode": "round_robin"},
    )
    assert r.status_code == 400 and set(r.json()["errors"]) == {"sentiments"}
    r = _json(client, "post", "/api/v1/routing-rules", {"name": "x", "assign_mode": "round_robin"})
    assert r.status_code == 400 and "assign_team" in r.json()["errors"]
    a = _json(client, "post", "/api/v1/routing-rules", {"name": "a", "words": ["refund"]}).json()
    b = _json(client, "post", "/api/v1/routing-rules", {"name": "b", "set_priority": "high"}).json()
    assert (a["position"], b["position"]) == (0, 1)
    r = _json(client, "post", "/api/v1/routing-rules/reorder", {"ids": [b["id"], a["id"]]})
    assert [x["name"] for x in r.json()] == ["b", "a"]
    assert _json(client, "post", "/api/v1/routing-rules/reorder", {"ids": [a["id"]]}).status_code == 400
    r = _json(client, "patch", f"/api/v1/routing-rules/{a['id']}", {"is_active": False})
    assert r.json()["is_active"] is False
    assert client.delete(f"/api/v1/routing-rules/{a['id']}").status_code == 204
    assert RoutingRule.objects.count() == 1


def test_sla_api(admin, alice_client):
    client = login(admin)
    assert (
        _json(
            alice_client,
            "put",
            "/api/v1/sla-policies/high",
            {"first_response_minutes": 1, "resolution_minutes": 2},
        ).status_code
        == 404
    )
    rows = {r["priority"]: r for r in client.get("/api/v1/sla-policies").json()}
    assert rows["urgent"]["first_response_minutes"] == 30 and not rows["urgent"]["custom"]
    r = _json(
        client, "put", "/api/v1/sla-policies/high", {"first_response_minutes": 0, "resolution_minutes": 2}
    )
    assert r.status_code == 400 and "first_response_minutes" in r.json()["errors"]
    r = _json(
        client,
        "put",
        "/api/v1/sla-policies/high",
        {"first_response_minutes": 20, "resolution_minutes": 200, "warn_before_minutes": 5},
    )
    assert r.status_code == 200 and SlaPolicy.objects.get().first_response_minutes == 20
    assert (
        _json(
            client,
            "put",
            "/api/v1/sla-policies/whenever",
            {"first_response_minutes": 20, "resolution_minutes": 200},
        ).status_code
        == 400
    )


def test_notifications_api(conv, alice_client, carol):
    alice_client.post(f"/inbox/{conv.pk}/reply/", {"text": f"@{carol.username} look", "kind": "note"})
    client = login(carol)
    [n] = client.get("/api/v1/notifications").json()
    assert n["kind"] == "mention" and n["conversation"] == conv.pk and n["read_at"] is None
    assert client.post("/api/v1/notifications/read").status_code == 204
    assert client.get("/api/v1/notifications").json()[0]["read_at"] is not None
