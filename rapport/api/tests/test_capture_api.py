"""Capture API with real bearer tokens: parse, save, vCard, duplicates, merges."""

import pytest

from rapport.audit.models import AuditEntry
from rapport.people import actions
from rapport.people.models import Organisation, Person

from .conftest import Api

MERGE_PEOPLE = "/people/merge"
MERGE_ORGS = "/organisations/merge"

LINE = "Jane Doe, CTO, Acme Corp, +44 20 7946 0958, jane@acme.com, bsky jane.bsky.social"


@pytest.fixture
def alice_api(alice):
    return Api(alice)


@pytest.fixture
def bob_api(bob):
    return Api(bob)


def test_parse_returns_preview_and_writes_nothing(alice_api):
    response = alice_api.post("/quick-add/parse", {"text": LINE})
    assert response.status_code == 200
    data = response.json()
    contact = data["contacts"][0]
    assert data["ok"] and contact["action"] == "create"
    assert (contact["first_name"], contact["title"]) == ("Jane", "CTO")
    assert contact["organisation"] == {"name": "Acme Corp", "id": None, "action": "create", "matched_by": ""}
    assert {i["value"] for i in contact["identities"]} == {
        "+442079460958",
        "jane@acme.com",
        "jane.bsky.social",
    }
    assert Person.objects.count() == 0


def test_quick_add_creates_then_links_existing_person(alice_api):
    response = alice_api.post("/quick-add", {"text": LINE})
    assert response.status_code == 201
    first = response.json()["results"][0]
    assert first["created"] and first["name"] == "Jane Doe"
    again = alice_api.post("/quick-add", {"text": "Jane Doe <jane@acme.com> @janedoe"}).json()["results"][0]
    assert again["person_id"] == first["person_id"] and not again["created"]
    assert Person.objects.count() == 1 and Organisation.objects.count() == 1
    assert Person.objects.get().source == "api"


def test_quick_add_errors_are_400_json(alice_api):
    response = alice_api.post("/quick-add", {"text": "Jane, jane@"})
    assert response.status_code == 400
    assert "jane@" in response.json()["errors"]["text"][0]
    response = alice_api.post("/quick-add", {"text": "x" * 10_000})
    assert response.status_code == 400 and "at most 5,000" in response.json()["detail"]
    assert Person.objects.count() == 0


def test_read_only_token_cannot_save(reader):
    api = Api(reader)
    assert api.post("/quick-add/parse", {"text": LINE}).status_code == 200
    assert api.post("/quick-add", {"text": LINE}).status_code == 403


def test_vcard_export_and_import_round_trip(alice, alice_api, bob_api):
    person = actions.person_create(
        actor=alice,
        first_name="Zoë",
        identities=[("email", "zoe@acme.com"), ("x", "zoe")],
        visibility="private",
    )
    response = alice_api.get(f"/people/{person.pk}/vcard")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/vcard")
    assert "attachment" in response["Content-Disposition"]
    assert bob_api.get(f"/people/{person.pk}/vcard").status_code == 404
    card = (
        response.content.decode()
        .replace("zoe@acme.com", "zoe2@acme.com")
        .replace(":https://x.com/zoe", ":https://x.com/zoe2")
    )
    result = bob_api.client.post("/api/v1/vcard/import", card, content_type="text/vcard").json()
    assert result["saved"] == 1 and result["results"][0]["created"]
    imported = Person.objects.get(pk=result["results"][0]["person_id"])
    assert set(imported.identities.values_list("kind", "value")) == {
        ("email", "zoe2@acme.com"),
        ("x", "zoe2"),
    }


def test_vcard_import_rejects_garbage(alice_api):
    response = alice_api.client.post("/api/v1/vcard/import", "hello", content_type="text/vcard")
    assert response.status_code == 400


def test_duplicates_and_merge(alice, alice_api):
    a = actions.person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.com")])
    b = actions.person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@acme.com")]
    )
    pairs = alice_api.get("/duplicates").json()
    assert [(p["a"]["id"], p["b"]["id"], p["score"]) for p in pairs] == [(a.pk, b.pk, 100)]
    response = alice_api.post(
        MERGE_PEOPLE, {"survivor_id": a.pk, "other_id": b.pk, "field_choices": {"last_name": "other"}}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"id": a.pk, "name": "Jane Doe", "merged_id": b.pk}
    assert AuditEntry.objects.filter(action="merge", object_id=a.pk).exists()
    assert alice_api.get("/duplicates").json() == []


def test_merge_of_someone_elses_record_is_404_and_changes_nothing(alice, bob, bob_api):
    a = actions.person_create(actor=alice, first_name="Jane")
    b = actions.person_create(actor=bob, first_name="Jane")
    response = bob_api.post(MERGE_PEOPLE, {"survivor_id": b.pk, "other_id": a.pk})
    assert response.status_code == 404
    a.refresh_from_db()
    assert a.merged_into_id is None


def test_merge_with_bad_choice_is_422_or_400(alice, alice_api):
    a = actions.person_create(actor=alice, first_name="A")
    b = actions.person_create(actor=alice, first_name="B")
    bad_value = alice_api.post(
        MERGE_PEOPLE, {"survivor_id": a.pk, "other_id": b.pk, "field_choices": {"title": "x"}}
    )
    assert bad_value.status_code == 422
    bad_field = alice_api.post(
        MERGE_PEOPLE, {"survivor_id": a.pk, "other_id": b.pk, "field_choices": {"owner": "other"}}
    )
    assert bad_field.status_code == 400 and "owner" in bad_field.json()["errors"]


def test_organisation_merge(alice, alice_api):
    acme = actions.organisation_create(actor=alice, name="Acme")
    acme2 = actions.organisation_create(actor=alice, name="Acme Inc")
    jane = actions.person_create(actor=alice, first_name="Jane", organisation=acme2)
    response = alice_api.post(MERGE_ORGS, {"survivor_id": acme.pk, "other_id": acme2.pk})
    assert response.status_code == 200
    jane.refresh_from_db()
    assert jane.organisation_id == acme.pk


def test_needs_a_token(client):
    assert (
        client.post("/api/v1/quick-add/parse", {"text": "x"}, content_type="application/json").status_code
        == 401
    )
