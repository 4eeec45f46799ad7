import json

import pytest
from django.utils import timezone

from conftest import login
from rapport.intelligence.models import Correction
from rapport.listening.ingest import ingest_mentions
from rapport.listening.models import Alert, AlertRule, ListeningQuery, Mention, MentionDaily, RuleKind

API = "/api/v1/listening"


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def item(ext, text="acme is fine", **kw):
    return {
        "source_kind": "x",
        "external_id": ext,
        "text": text,
        "author_handle": "someone",
        "published_at": timezone.now(),
        **kw,
    }


@pytest.mark.django_db
def test_query_syntax_error_is_a_400_on_text_with_the_column(alice_client):
    r = post(alice_client, f"{API}/queries", {"name": "Acme", "text": "acme AND (outage OR down"})
    assert r.status_code == 400
    assert r.json()["errors"]["text"] == ["Unbalanced parenthesis at column 10"]
    assert not ListeningQuery.objects.exists()


@pytest.mark.django_db
def test_query_crud_and_check(alice_client, bob_client):
    r = post(
        alice_client, f"{API}/queries", {"name": "Acme", "text": "acme OR #acme", "visibility": "private"}
    )
    assert r.status_code == 201, r.content
    qid = r.json()["id"]
    assert alice_client.get(f"{API}/queries/{qid}").status_code == 200
    assert bob_client.get(f"{API}/queries/{qid}").status_code == 404
    assert (
        alice_client.patch(
            f"{API}/queries/{qid}",
            json.dumps({"text": "acme", "version": 1}),
            content_type="application/json",
        ).json()["version"]
        == 2
    )
    stale = alice_client.patch(
        f"{API}/queries/{qid}", json.dumps({"text": "x", "version": 1}), content_type="application/json"
    )
    assert stale.status_code == 409
    assert bob_client.delete(f"{API}/queries/{qid}").status_code == 404
    assert alice_client.delete(f"{API}/queries/{qid}").status_code == 204
    check = post(alice_client, f"{API}/queries/check", {"text": 'acme "is down'}).json()
    assert check == {"valid": False, "error": "Unterminated quote at column 6", "column": 6}


@pytest.mark.django_db
def test_read_only_user_cannot_create_queries(reader):
    r = post(login(reader), f"{API}/queries", {"name": "Acme", "text": "acme"})
    assert r.status_code == 400 and not ListeningQuery.objects.exists()


@pytest.mark.django_db
def test_mentions_list_filters_and_cursor(alice, alice_client, bob_client):
    q = ListeningQuery.objects.create(owner=alice, name="Acme", text="acme")
    ingest_mentions(
        [item(str(i), "acme is awful" if i % 2 else "acme is great") for i in range(5)] + [item("z", "other")]
    )
    page = alice_client.get(f"{API}/mentions", {"query": q.pk, "sentiment": "negative", "limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert page["items"][0]["queries"] == [q.pk]
    page2 = alice_client.get(
        f"{API}/mentions", {"query": q.pk, "sentiment": "negative", "limit": 1, "cursor": page["next_cursor"]}
    ).json()
    assert page2["items"][0]["id"] != page["items"][0]["id"]
    # Mentions are shared with everyone in the organisation.
    assert len(bob_client.get(f"{API}/mentions").json()["items"]) == 6
    assert alice_client.get(f"{API}/mentions", {"sentiment": "angry"}).status_code == 422
    assert alice_client.get(f"{API}/mentions", {"cursor": "garbage!"}).status_code == 400


@pytest.mark.django_db
def test_sentiment_correction_updates_mention_rollups_and_teaches_the_model(alice_client):
    ingest_mentions([item("1", "acme is great")])
    m = Mention.objects.get()
    assert m.sentiment == "positive"
    r = post(alice_client, f"{API}/mentions/{m.pk}/sentiment", {"label": "negative"})
    assert r.status_code == 200 and r.json()["sentiment"] == "negative" and r.json()["sentiment_corrected"]
    assert Correction.objects.get().label == "negative"
    counts = dict(MentionDaily.objects.filter(query_id=0).values_list("sentiment", "count"))
    assert counts == {"positive": 0, "negative": 1}


@pytest.mark.django_db
def test_convert_mention_creates_one_conversation(alice_client):
    ingest_mentions([item("1", "acme lost my parcel")])
    m = Mention.objects.get()
    first = post(alice_client, f"{API}/mentions/{m.pk}/convert", {}).json()
    again = post(alice_client, f"{API}/mentions/{m.pk}/convert", {}).json()
    assert first["conversation"] == again["conversation"]
    m.refresh_from_db()
    assert m.state == "converted"


@pytest.mark.django_db
def test_alerts_list_acknowledge_and_resolve(alice, alice_client, bob_client):
    AlertRule.objects.create(
        owner=alice,
        name="All negative",
        kind=RuleKind.NEGATIVE_INFLUENCE,
        min_influence=0,
        visibility="private",
    )
    ingest_mentions([item("1", "acme is awful and broken")])
    alert = Alert.objects.get()
    assert alice_client.get(f"{API}/alerts", {"state": "open"}).json()["items"][0]["id"] == alert.pk
    assert bob_client.get(f"{API}/alerts").json()["items"] == []
    assert post(bob_client, f"{API}/alerts/{alert.pk}/acknowledge", {}).status_code == 404
    assert post(alice_client, f"{API}/alerts/{alert.pk}/acknowledge", {}).json()["state"] == "acknowledged"
    assert post(alice_client, f"{API}/alerts/{alert.pk}/resolve", {}).json()["state"] == "resolved"


@pytest.mark.django_db
def test_dashboard_json(alice, alice_client):
    ListeningQuery.objects.create(owner=alice, name="Acme", text="acme")
    ListeningQuery.objects.create(
        owner=alice, name="Globex", text="globex", kind="competitor", is_competitor=True
    )
    ingest_mentions([item("1", "acme is great #win"), item("2", "globex is awful"), item("3", "acme ok")])
    data = alice_client.get(f"{API}/dashboard").json()
    assert data["totals"]["all"] == 3
    assert {x["name"]: x["count"] for x in data["share_of_voice"]} == {"Acme": 2, "Globex": 1}
    assert any(t["term"] == "#win" for t in data["top_topics"])
