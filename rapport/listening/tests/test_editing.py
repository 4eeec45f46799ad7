"""Editing and deleting queries, alert rules and sources, in the UI and the API: who may,
what bad input gets back, and that stored mentions survive a deletion."""

import json

import pytest
from django.utils import timezone

from conftest import login
from rapport.listening.ingest import ingest_mentions
from rapport.listening.models import Alert, AlertRule, ListeningQuery, ListeningSource, Mention, RuleKind

API = "/api/v1/listening"


def send(client, method, url, data):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def item(ext, text="acme is awful and broken"):
    return {
        "source_kind": "x",
        "external_id": ext,
        "text": text,
        "author_handle": "someone",
        "published_at": timezone.now(),
    }


@pytest.fixture
def rule(alice):
    return AlertRule.objects.create(
        owner=alice, name="Loud", kind=RuleKind.NEGATIVE_INFLUENCE, min_influence=0, visibility="team",
        team=alice.teams.first(),
    )  # fmt: skip


@pytest.fixture
def source(db):
    s = ListeningSource(kind="rss", name="Blog", config={"urls": ["https://blog.example/feed"]})
    s.credentials = {"access_token": "SECRET"}
    s.save()
    return s


# --- alert rules -------------------------------------------------------------------------


@pytest.mark.django_db
def test_rule_edit_page_saves_pauses_and_shows_field_errors(rule, alice_client):
    page = alice_client.get(f"/listening/rules/{rule.pk}/")
    assert page.status_code == 200 and 'data-confirm="Delete the rule Loud' in page.content.decode()
    form = {"name": "Loud", "kind": "negative_influence", "min_influence": "70", "version": "1"}
    bad = alice_client.post(f"/listening/rules/{rule.pk}/", {**form, "min_influence": "700"})
    assert bad.status_code == 400 and "Between 0 and 100" in bad.content.decode()
    bad = alice_client.post(f"/listening/rules/{rule.pk}/", {**form, "window_hours": "lots"})
    assert bad.status_code == 400 and "A number, please." in bad.content.decode()
    ok = alice_client.post(f"/listening/rules/{rule.pk}/", form)  # is_active unticked: paused
    assert ok.status_code == 302
    rule.refresh_from_db()
    assert (rule.min_influence, rule.is_active, rule.version) == (70, False, 2)
    stale = alice_client.post(f"/listening/rules/{rule.pk}/", form)
    assert stale.status_code == 400 and "Someone else changed" in stale.content.decode()


@pytest.mark.django_db
def test_rule_edit_access(rule, alice, bob_client, carol, reader):
    assert bob_client.get(f"/listening/rules/{rule.pk}/").status_code == 404  # another team
    assert login(reader).get(f"/listening/rules/{rule.pk}/").status_code == 403  # sees, cannot write
    assert login(reader).post(f"/listening/rules/{rule.pk}/", {"delete": "1"}).status_code == 403
    assert login(carol).get(f"/listening/rules/{rule.pk}/").status_code == 200  # the team's manager
    assert AlertRule.objects.filter(pk=rule.pk).exists()


@pytest.mark.django_db
def test_deleting_a_rule_takes_its_alerts_and_keeps_the_mentions(rule, alice_client):
    ingest_mentions([item("1")])
    assert Alert.objects.filter(rule=rule).count() == 1
    r = alice_client.post(f"/listening/rules/{rule.pk}/", {"delete": "1"})
    assert r.status_code == 302
    assert not AlertRule.objects.exists() and not Alert.objects.exists()
    assert Mention.objects.count() == 1


@pytest.mark.django_db
def test_rule_api_get_patch_delete(rule, alice_client, bob_client, reader):
    url = f"{API}/rules/{rule.pk}"
    assert alice_client.get(url).json()["name"] == "Loud"
    assert bob_client.get(url).status_code == 404
    assert send(bob_client, "patch", url, {"name": "Mine"}).status_code == 404
    assert send(login(reader), "patch", url, {"name": "Mine"}).status_code == 404
    bad = send(alice_client, "patch", url, {"min_influence": 500})
    assert bad.status_code == 422 and "min_influence" in bad.json()["errors"]
    assert send(alice_client, "patch", url, {"name": "  "}).json()["errors"] == {"name": ["Required."]}
    assert send(alice_client, "patch", url, {"query_id": 999999}).json()["errors"] == {
        "query": ["Unknown query."]
    }
    ok = send(alice_client, "patch", url, {"is_active": False, "factor": 3, "version": 1})
    assert ok.status_code == 200 and ok.json()["is_active"] is False and ok.json()["factor"] == 3
    assert send(alice_client, "patch", url, {"name": "x", "version": 1}).status_code == 409
    assert login(reader).delete(url).status_code == 404
    assert alice_client.delete(url).status_code == 204
    assert alice_client.get(url).status_code == 404


# --- queries ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_deleting_a_query_keeps_its_mentions_and_warns_about_rules(alice, alice_client, reader):
    q = ListeningQuery.objects.create(owner=alice, name="Acme", text="acme")
    ingest_mentions([item("1")])
    assert Mention.objects.get().matches.count() == 1
    page = alice_client.get(f"/listening/queries/{q.pk}/").content.decode()
    assert "The mentions are kept" in page
    assert login(reader).post(f"/listening/queries/{q.pk}/", {"delete": "1"}).status_code == 403
    assert alice_client.post(f"/listening/queries/{q.pk}/", {"delete": "1"}).status_code == 302
    assert not ListeningQuery.objects.exists() and Mention.objects.count() == 1


# --- sources ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_source_edit_page_for_managers_only(source, alice_client, carol, reader):
    assert alice_client.get(f"/listening/sources/{source.pk}/").status_code == 403
    assert alice_client.post(f"/listening/sources/{source.pk}/", {"delete": "1"}).status_code == 403
    assert login(reader).get(f"/listening/sources/{source.pk}/").status_code == 403
    manager = login(carol)
    page = manager.get(f"/listening/sources/{source.pk}/").content.decode()
    assert "SECRET" not in page and "Forget the stored token" in page
    assert manager.get("/listening/sources/999999/").status_code == 404
    form = {"name": "Blog", "config": '{"urls": ["https://blog.example/feed"]}', "has_active": "1"}
    bad = manager.post(f"/listening/sources/{source.pk}/", {**form, "config": "{nope"})
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    bad = manager.post(
        f"/listening/sources/{source.pk}/", {**form, "config": '{"urls": ["file:///etc/passwd"]}'}
    )
    assert bad.status_code == 400 and "not an http(s) URL" in bad.content.decode()
    bad = manager.post(f"/listening/sources/{source.pk}/", {**form, "name": ""})
    assert bad.status_code == 400 and "Required." in bad.content.decode()
    ok = manager.post(f"/listening/sources/{source.pk}/", {**form, "name": "Our blog"})  # unticked: paused
    assert ok.status_code == 302
    source.refresh_from_db()
    assert source.name == "Our blog" and not source.is_active
    assert source.credentials == {"access_token": "SECRET"}  # a blank token keeps the stored one
    manager.post(f"/listening/sources/{source.pk}/", {**form, "clear_token": "on", "is_active": "on"})
    source.refresh_from_db()
    assert source.credentials == {} and source.is_active


@pytest.mark.django_db
def test_deleting_a_source_keeps_its_mentions(source, carol):
    ingest_mentions([item("1")], source=source)
    manager = login(carol)
    page = manager.get(f"/listening/sources/{source.pk}/").content.decode()
    assert "Its 1 mention(s) are kept" in page
    assert manager.post(f"/listening/sources/{source.pk}/", {"delete": "1"}).status_code == 302
    assert not ListeningSource.objects.exists()
    m = Mention.objects.get()
    assert m.source_id is None and m.source_kind == "x"


@pytest.mark.django_db
def test_source_api_crud_and_access(source, alice_client, carol, reader):
    manager = login(carol)
    listed = alice_client.get(f"{API}/sources").json()
    assert listed[0]["has_token"] is True and "SECRET" not in json.dumps(listed)
    assert send(alice_client, "post", f"{API}/sources", {"kind": "rss", "name": "x"}).status_code == 403
    assert send(login(reader), "patch", f"{API}/sources/{source.pk}", {"name": "x"}).status_code == 403
    assert alice_client.delete(f"{API}/sources/{source.pk}").status_code == 403
    bad = send(manager, "post", f"{API}/sources", {"kind": "gopher", "name": "x"})
    assert bad.status_code == 422 and "kind" in bad.json()["errors"]
    bad = send(manager, "post", f"{API}/sources", {"kind": "rss", "name": "x", "config": {"urls": "one"}})
    assert bad.status_code == 400 and "list of at most 50 strings" in bad.json()["errors"]["config"][0]
    made = send(
        manager, "post", f"{API}/sources", {"kind": "x_stream", "name": "Stream", "token": "T", "config": {}}
    )
    assert made.status_code == 201 and made.json()["has_token"] is True
    sid = made.json()["id"]
    assert ListeningSource.objects.get(pk=sid).credentials == {"bearer_token": "T"}
    patched = send(manager, "patch", f"{API}/sources/{sid}", {"is_active": False, "name": "S2"})
    assert patched.json()["is_active"] is False and patched.json()["name"] == "S2"
    assert send(manager, "patch", f"{API}/sources/{sid}", {"name": ""}).status_code == 400
    assert send(manager, "patch", f"{API}/sources/999999", {"name": "x"}).status_code == 404
    ingest_mentions([item("1")], source=ListeningSource.objects.get(pk=sid))
    assert manager.delete(f"{API}/sources/{sid}").status_code == 204
    assert Mention.objects.count() == 1
    assert manager.get(f"{API}/sources/{sid}").status_code == 404
