"""Merging people and organisations: nothing lost, the other becomes a tombstone, audited."""

from decimal import Decimal

import pytest
from django.http import Http404
from django.urls import reverse

from rapport.activities.models import Activity
from rapport.audit.models import AuditEntry
from rapport.core.errors import ActionError
from rapport.people import actions
from rapport.people.merge import organisation_merge, person_merge
from rapport.people.models import Address, Employment, Organisation, OrganisationDomain, Person, Relationship
from rapport.people.selectors import people_visible
from rapport.sales.models import Deal, DealParticipant, Order, Pipeline, Product, Stage


@pytest.fixture
def deal_factory(alice):
    pipeline = Pipeline.objects.create(name="Sales")
    stage = Stage.objects.create(pipeline=pipeline, name="Lead", position=1, probability=10)

    def make(name, org=None):
        return Deal.objects.create(name=name, pipeline=pipeline, stage=stage, owner=alice, organisation=org)

    return make


@pytest.fixture
def pair(alice, deal_factory):
    acme = actions.organisation_create(actor=alice, name="Acme")
    jane = actions.person_create(
        actor=alice,
        first_name="Jane",
        last_name="Doe",
        organisation=acme,
        identities=[("email", "jane@acme.com"), ("phone", "+442079460958")],
        tags=["customer"],
    )
    jane.custom = {"shoe": "38", "colour": "blue"}
    jane.save()
    other = actions.person_create(
        actor=alice,
        first_name="Jane",
        last_name="Doe-Smith",
        title="CTO",
        identities=[("email", "jane@acme.com"), ("x", "janedoe"), ("email", "jane@home.example")],
        bio="Met at FOSDEM",
        tags=["speaker"],
    )
    other.custom = {"colour": "green", "pet": "cat"}
    other.save()
    friend = actions.person_create(actor=alice, first_name="Friend")
    actions.relationship_add(actor=alice, from_person=other, to_person=friend, kind="knows", strength=80)
    actions.relationship_add(actor=alice, from_person=jane, to_person=friend, kind="knows", strength=20)
    actions.relationship_add(actor=alice, from_person=jane, to_person=other, kind="colleague")
    Address.objects.create(person=other, street="1 Main St", city="London")
    for who in (jane, other):
        Activity.objects.create(kind="note", body=f"about {who.last_name}", person=who, owner=alice)
    shared = deal_factory("Shared deal")
    own = deal_factory("Other's deal")
    DealParticipant.objects.create(deal=shared, person=jane)
    DealParticipant.objects.create(deal=shared, person=other, role="Champion")
    DealParticipant.objects.create(deal=own, person=other, role="Buyer")
    return jane, other, friend, shared, own


def test_merge_keeps_identities_timeline_deals_and_writes_audit(alice, pair):
    jane, other, friend, shared, own = pair
    merged = person_merge(actor=alice, survivor=jane, other=other, field_choices={"last_name": "other"})
    assert merged.pk == jane.pk and merged.last_name == "Doe-Smith"
    assert merged.title == "CTO" and merged.bio == "Met at FOSDEM"  # blanks filled from the other
    assert set(merged.identities.values_list("kind", "value")) == {
        ("email", "jane@acme.com"),
        ("phone", "+442079460958"),
        ("x", "janedoe"),
        ("email", "jane@home.example"),
    }
    assert merged.identities.filter(kind="email", is_primary=True).count() == 1
    assert Activity.objects.filter(person=merged).count() == 2
    assert set(DealParticipant.objects.filter(person=merged).values_list("deal_id", "role")) == {
        (shared.pk, "Champion"),
        (own.pk, "Buyer"),
    }
    # relationships re-pointed: the self-link is gone, the duplicate "knows" kept the stronger one
    rels = list(Relationship.objects.filter(from_person=merged))
    assert [(r.to_person_id, r.kind, r.strength) for r in rels] == [(friend.pk, "knows", 80)]
    assert merged.addresses.count() == 1
    assert set(merged.tags.values_list("name", flat=True)) == {"customer", "speaker"}
    assert merged.custom == {"shoe": "38", "colour": "blue", "pet": "cat"}
    other.refresh_from_db()
    assert other.merged_into_id == merged.pk
    assert other not in people_visible(alice)
    entry = AuditEntry.objects.get(model="people.person", object_id=merged.pk, action="merge")
    assert entry.changes["merged_from"] == {"id": other.pk, "name": "Jane Doe-Smith"}
    assert entry.changes["fields"]["last_name"]["replaced"] == "Doe"
    assert "x:janedoe" in entry.changes["identities_moved"]
    assert "email:jane@acme.com" in entry.changes["identities_already_present"]
    assert entry.changes["activities_moved"] == 1
    assert AuditEntry.objects.filter(model="people.person", object_id=other.pk, action="merge").exists()


def test_custom_field_clash_survivor_wins_unless_chosen(alice, pair):
    jane, other, *_ = pair
    merged = person_merge(actor=alice, survivor=jane, other=other, field_choices={"custom:colour": "other"})
    assert merged.custom["colour"] == "green"


def test_organisation_choice_moves_current_employment(alice, pair):
    jane, other, *_ = pair
    globex = actions.organisation_create(actor=alice, name="Globex")
    actions.person_update(actor=alice, person=other, data={"organisation": globex})
    merged = person_merge(actor=alice, survivor=jane, other=other, field_choices={"organisation": "other"})
    assert merged.organisation == globex
    current = list(
        Employment.objects.filter(person=merged, is_current=True).values_list("organisation__name", flat=True)
    )
    assert current == ["Globex"]


def test_merge_of_record_actor_cannot_edit_is_404_and_changes_nothing(alice, bob, pair):
    jane, other, *_ = pair
    bobs = actions.person_create(actor=bob, first_name="Jane", identities=[("email", "jane@acme.com")])
    before = (
        set(jane.identities.values_list("value", flat=True)),
        Person.objects.filter(merged_into__isnull=False).count(),
    )
    with pytest.raises(Http404):
        person_merge(actor=alice, survivor=jane, other=bobs)
    with pytest.raises(Http404):
        person_merge(actor=bob, survivor=bobs, other=jane)
    assert (
        set(jane.identities.values_list("value", flat=True)),
        Person.objects.filter(merged_into__isnull=False).count(),
    ) == before
    assert not AuditEntry.objects.filter(action="merge").exists()


def test_invalid_field_choice_is_an_error_and_changes_nothing(alice, pair):
    jane, other, *_ = pair
    with pytest.raises(ActionError) as exc:
        person_merge(
            actor=alice, survivor=jane, other=other, field_choices={"owner": "other", "title": "maybe"}
        )
    assert set(exc.value.field_errors) == {"owner", "title"}
    other.refresh_from_db()
    assert other.merged_into_id is None


def test_merging_a_tombstone_again_is_refused(alice, pair):
    jane, other, *_ = pair
    person_merge(actor=alice, survivor=jane, other=other)
    with pytest.raises(ActionError):
        person_merge(actor=alice, survivor=jane, other=other)


def test_merge_page_side_by_side_then_merge(alice_client, pair):
    jane, other, *_ = pair
    url = reverse("merge-people", args=[jane.pk, other.pk])
    body = alice_client.get(url).content.decode()
    assert "Doe-Smith" in body and 'name="choice_last_name"' in body
    response = alice_client.post(url, {"keep": "b", "choice_last_name": "a"})
    assert response.status_code == 302 and response["Location"] == f"/people/{other.pk}/"
    other.refresh_from_db()
    jane.refresh_from_db()
    assert other.last_name == "Doe" and jane.merged_into_id == other.pk


def test_merge_page_is_404_for_someone_who_cannot_edit(bob_client, pair):
    jane, other, *_ = pair
    url = reverse("merge-people", args=[jane.pk, other.pk])
    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, {"keep": "a"}).status_code == 404
    other.refresh_from_db()
    assert other.merged_into_id is None


def test_organisation_merge_repoints_everything(alice, deal_factory):
    acme = actions.organisation_create(actor=alice, name="Acme", domains=["acme.com"])
    acme2 = actions.organisation_create(
        actor=alice, name="ACME Inc", domains=["acme.com", "acme.io"], industry="Tools"
    )
    sub = actions.organisation_create(actor=alice, name="Acme Labs", parent=acme2)
    jane = actions.person_create(actor=alice, first_name="Jane", organisation=acme2)
    deal = deal_factory("Big one", org=acme2)
    product = Product.objects.create(name="Seat", sku="SEAT", price=Decimal("10"))
    order = Order.objects.create(organisation=acme2, product=product)
    note = Activity.objects.create(kind="note", body="hi", organisation=acme2, owner=alice)
    merged = organisation_merge(actor=alice, survivor=acme, other=acme2)
    assert merged.industry == "Tools"
    for obj in (jane, deal, order, note):
        obj.refresh_from_db()
        assert obj.organisation_id == acme.pk
    sub.refresh_from_db()
    assert sub.parent_id == acme.pk
    assert sorted(OrganisationDomain.objects.filter(organisation=acme).values_list("domain", flat=True)) == [
        "acme.com",
        "acme.io",
    ]
    assert Employment.objects.filter(person=jane, organisation=acme).exists()
    acme2.refresh_from_db()
    assert acme2.merged_into_id == acme.pk
    assert AuditEntry.objects.filter(model="people.organisation", object_id=acme.pk, action="merge").exists()
    assert not Organisation.objects.filter(pk=acme.pk, parent=acme).exists()
