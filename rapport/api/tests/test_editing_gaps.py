"""API for issue 2: product PATCH, custom fields through the update actions, relationship
and participant removal, employments and addresses."""

import pytest

from rapport.audit.models import AuditEntry
from rapport.people.actions import (
    address_add,
    employment_add,
    organisation_create,
    person_create,
    relationship_add,
)
from rapport.people.models import Address, Employment, Person, Relationship
from rapport.sales.actions import deal_create, product_create
from rapport.sales.models import DealParticipant, Product

pytestmark = pytest.mark.django_db


# --- products -------------------------------------------------------------------------------


def test_manager_patches_and_deactivates_a_product(carol, carol_api):
    product = product_create(actor=carol, name="Seat", sku="S-1", price="10")
    r = carol_api.patch(f"/products/{product.pk}", {"price": "12.5", "active": False, "currency": "usd"})
    assert r.status_code == 200, r.content
    assert (r.json()["price"], r.json()["active"], r.json()["currency"]) == ("12.50", False, "USD")
    assert AuditEntry.objects.filter(model="sales.product", object_id=product.pk, action="update").exists()


def test_product_patch_is_refused_to_sales_and_readers_and_bad_input_is_4xx(
    carol, alice_api, reader_api, carol_api
):
    product = product_create(actor=carol, name="Seat", sku="S-1", price="10")
    assert alice_api.patch(f"/products/{product.pk}", {"active": False}).status_code == 403
    assert reader_api.patch(f"/products/{product.pk}", {"active": False}).status_code == 403
    assert carol_api.patch(f"/products/{product.pk}", {"sku": "NEW"}).status_code == 422
    assert carol_api.patch(f"/products/{product.pk}", {"name": None}).status_code == 400
    assert carol_api.patch(f"/products/{product.pk}", {"currency": "12"}).status_code == 400
    assert carol_api.patch(f"/products/{product.pk}", {"price": "-3"}).status_code == 422
    assert carol_api.patch("/products/999999", {"active": False}).status_code == 404
    product.refresh_from_db()
    assert (product.active, product.sku, str(product.price), product.currency) == (
        True,
        "S-1",
        "10.00",
        "EUR",
    )


# --- custom fields ----------------------------------------------------------------------------


def test_custom_patch_goes_through_the_action_rules_and_audit(alice, alice_api):
    person = person_create(actor=alice, first_name="Ann", custom={"a": "1"})
    r = alice_api.patch(f"/people/{person.pk}", {"custom": {"k" * 61: "v"}})
    assert r.status_code == 400 and r.json()["errors"]["custom"]
    r = alice_api.patch(f"/people/{person.pk}", {"custom": {f"k{i}": i for i in range(51)}})
    assert r.status_code == 400
    r = alice_api.patch(f"/people/{person.pk}", {"custom": {"k": "v" * 1001}})
    assert r.status_code == 400
    person.refresh_from_db()
    assert person.custom == {"a": "1"} and person.version == 1
    r = alice_api.patch(f"/people/{person.pk}", {"custom": {"b": 2}})
    assert r.status_code == 200 and r.json()["custom"] == {"b": 2} and r.json()["version"] == 2
    assert AuditEntry.objects.filter(
        model="people.person", object_id=person.pk, changes__has_key="custom"
    ).exists()


def test_organisation_custom_patch_and_version_conflict(alice, alice_api):
    org = organisation_create(actor=alice, name="Acme")
    assert alice_api.patch(f"/organisations/{org.pk}", {"custom": {"tier": "gold"}}).json()["custom"] == {
        "tier": "gold"
    }
    r = alice_api.patch(f"/organisations/{org.pk}?version=1", {"custom": {"tier": "lost"}})
    assert r.status_code == 409
    org.refresh_from_db()
    assert org.custom == {"tier": "gold"}


# --- relationships and participants -----------------------------------------------------------


def test_relationship_delete_from_either_end(alice, alice_api):
    ann, bo = person_create(actor=alice, first_name="Ann"), person_create(actor=alice, first_name="Bo")
    rel = relationship_add(actor=alice, from_person=ann, to_person=bo, kind="knows")
    stranger = person_create(actor=alice, first_name="Cy")
    assert alice_api.delete(f"/people/{stranger.pk}/relationships/{rel.pk}").status_code == 404
    assert alice_api.delete(f"/people/{bo.pk}/relationships/{rel.pk}").status_code == 204
    assert not Relationship.objects.exists()
    assert alice_api.delete(f"/people/{bo.pk}/relationships/{rel.pk}").status_code == 404


def test_participant_delete_uses_the_action(alice, alice_api):
    person = person_create(actor=alice, first_name="Ann")
    deal = deal_create(actor=alice, name="Big", people=[(person, "user")])
    assert alice_api.delete(f"/deals/{deal.pk}/participants/{person.pk}").status_code == 204
    assert not DealParticipant.objects.exists()
    assert AuditEntry.objects.filter(model="sales.deal", changes__participant=["Ann (user)", None]).exists()


# --- employments and addresses ------------------------------------------------------------------


def test_employment_round_trip(alice, alice_api):
    person = person_create(actor=alice, first_name="Ann")
    org = organisation_create(actor=alice, name="Acme")
    r = alice_api.post(
        f"/people/{person.pk}/employments",
        {"organisation": org.pk, "title": "CTO", "started_on": "2020-01-01"},
    )
    assert r.status_code == 201, r.content
    job = r.json()
    assert job["is_current"] and job["organisation"] == {"id": org.pk, "name": "Acme"}
    r = alice_api.post(f"/people/{person.pk}/employments/{job['id']}/end", {"ended_on": "2019-01-01"})
    assert r.status_code == 400 and "ended_on" in r.json()["errors"]
    r = alice_api.post(f"/people/{person.pk}/employments/{job['id']}/end", {"ended_on": "2024-01-31"})
    assert r.status_code == 200 and r.json()["ended_on"] == "2024-01-31" and not r.json()["is_current"]
    listed = alice_api.get(f"/people/{person.pk}/employments").json()
    assert [e["id"] for e in listed] == [job["id"]]
    assert alice_api.post(f"/people/{person.pk}/employments", {"organisation": 999999}).status_code == 400


def test_address_round_trip_and_bad_input(alice, alice_api):
    person = person_create(actor=alice, first_name="Ann")
    base = f"/people/{person.pk}/addresses"
    r = alice_api.post(base, {"label": "home", "city": "Paris", "country": "FR"})
    assert r.status_code == 201, r.content
    aid = r.json()["id"]
    assert alice_api.patch(f"{base}/{aid}", {"city": "Lyon"}).json()["city"] == "Lyon"
    assert alice_api.patch(f"{base}/{aid}", {"city": None}).status_code == 400
    assert alice_api.patch(f"{base}/{aid}", {"postcode": "9" * 21}).status_code == 422
    assert alice_api.post(base, {"label": "empty"}).status_code == 400
    assert alice_api.post(base, {"city": "X", "person": 1}).status_code == 422
    assert [a["city"] for a in alice_api.get(base).json()] == ["Lyon"]
    assert alice_api.delete(f"{base}/{aid}").status_code == 204
    assert not Address.objects.exists()
    assert (
        AuditEntry.objects.filter(
            model="people.person", object_id=person.pk, changes__has_key="address"
        ).count()
        == 3
    )


# --- access ---------------------------------------------------------------------------------------


def test_bob_can_change_nothing_of_alices_private_person(alice, bob_api):
    person = person_create(actor=alice, first_name="Ann", visibility="private", custom={"a": "1"})
    other = person_create(actor=alice, first_name="Bo", visibility="private")
    org = organisation_create(actor=alice, name="Acme")
    rel = relationship_add(actor=alice, from_person=person, to_person=other, kind="knows")
    job = employment_add(actor=alice, person=person, organisation=org)
    address = address_add(actor=alice, person=person, data={"city": "Paris"})
    base = f"/people/{person.pk}"
    responses = [
        bob_api.patch(base, {"custom": {"b": "2"}}),
        bob_api.delete(f"{base}/relationships/{rel.pk}"),
        bob_api.get(f"{base}/employments"),
        bob_api.post(f"{base}/employments", {"organisation": org.pk}),
        bob_api.post(f"{base}/employments/{job.pk}/end", {}),
        bob_api.get(f"{base}/addresses"),
        bob_api.post(f"{base}/addresses", {"city": "Berlin"}),
        bob_api.patch(f"{base}/addresses/{address.pk}", {"city": "Berlin"}),
        bob_api.delete(f"{base}/addresses/{address.pk}"),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    person.refresh_from_db()
    assert person.custom == {"a": "1"}
    assert Relationship.objects.filter(pk=rel.pk).exists()
    assert Employment.objects.get(pk=job.pk).is_current
    assert Address.objects.get(pk=address.pk).city == "Paris"


def test_visible_but_not_editable_person_is_404_for_writes_and_reader_is_403(alice, bob_api, reader_api):
    person = person_create(actor=alice, first_name="Ann", visibility="everyone")
    address = address_add(actor=alice, person=person, data={"city": "Paris"})
    assert bob_api.get(f"/people/{person.pk}/addresses").status_code == 200
    assert bob_api.delete(f"/people/{person.pk}/addresses/{address.pk}").status_code == 404
    assert reader_api.delete(f"/people/{person.pk}/addresses/{address.pk}").status_code == 403
    assert reader_api.post(f"/people/{person.pk}/addresses", {"city": "X"}).status_code == 403
    assert Address.objects.count() == 1 and Person.objects.count() == 1
    assert Product.objects.count() == 0
