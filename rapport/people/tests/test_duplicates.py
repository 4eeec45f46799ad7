"""Duplicate suggestions: shared identities and similar names within an organisation or domain."""

import time

from django.urls import reverse

from rapport.people import actions
from rapport.people.duplicates import duplicates_for, find_duplicates
from rapport.people.models import Person


def pairs_of(pairs):
    return {frozenset((p.a.pk, p.b.pk)): p for p in pairs}


def test_same_email_pair_is_found_with_score_100(alice):
    a = actions.person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@acme.com")]
    )
    b = actions.person_create(
        actor=alice, first_name="J.", last_name="D.", identities=[("email", "JANE@acme.com")]
    )
    found = pairs_of(find_duplicates(user=alice))
    pair = found[frozenset((a.pk, b.pk))]
    assert pair.score == 100 and "jane@acme.com" in pair.reason


def test_jon_and_john_smith_at_the_same_organisation_are_suggested(alice):
    acme = actions.organisation_create(actor=alice, name="Acme")
    jon = actions.person_create(actor=alice, first_name="Jon", last_name="Smith", organisation=acme)
    john = actions.person_create(actor=alice, first_name="John", last_name="Smith", organisation=acme)
    pair = pairs_of(find_duplicates(user=alice))[frozenset((jon.pk, john.pk))]
    assert pair.score >= 90 and "Acme" in pair.reason
    assert [p.b.pk for p in duplicates_for(user=alice, person=jon)] == [john.pk]


def test_different_people_are_not_suggested(alice):
    acme = actions.organisation_create(actor=alice, name="Acme")
    other = actions.organisation_create(actor=alice, name="Globex")
    actions.person_create(actor=alice, first_name="Jane", last_name="Doe", organisation=acme)
    actions.person_create(actor=alice, first_name="John", last_name="Doe", organisation=acme)
    actions.person_create(actor=alice, first_name="John", last_name="Smith", organisation=acme)
    actions.person_create(actor=alice, first_name="Jon", last_name="Smith", organisation=other)
    assert find_duplicates(user=alice) == []


def test_similar_names_on_the_same_company_domain_without_organisation(alice):
    a = actions.person_create(
        actor=alice, first_name="Katherine", last_name="Lee", identities=[("email", "kl@initech.example")]
    )
    b = actions.person_create(
        actor=alice, first_name="Katharine", last_name="Lee", identities=[("email", "k.lee@initech.example")]
    )
    actions.person_create(
        actor=alice, first_name="Katherine", last_name="Lee", identities=[("email", "kl@gmail.com")]
    )
    found = pairs_of(find_duplicates(user=alice))
    assert set(found) == {frozenset((a.pk, b.pk))}


def test_only_visible_people_are_suggested(alice, bob):
    actions.person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.com")])
    actions.person_create(
        actor=bob, first_name="Jane", identities=[("email", "jane@acme.com")], visibility="private"
    )
    assert find_duplicates(user=alice) == []
    assert len(find_duplicates(user=bob)) == 1


def test_not_a_duplicate_is_remembered(alice, alice_client):
    a = actions.person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.com")])
    b = actions.person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.com")])
    response = alice_client.post(
        reverse("duplicate-dismiss"), {"a": a.pk, "b": b.pk, "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/duplicates/"
    assert find_duplicates(user=alice) == []
    a.refresh_from_db()
    assert a.custom["not_duplicates"] == [b.pk]


def test_dismiss_needs_both_editable(alice, bob, bob_client):
    a = actions.person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.com")])
    b = actions.person_create(actor=bob, first_name="Jane", identities=[("email", "jane@acme.com")])
    assert bob_client.post(reverse("duplicate-dismiss"), {"a": a.pk, "b": b.pk}).status_code == 404
    a.refresh_from_db()
    assert "not_duplicates" not in a.custom


def test_duplicates_page_lists_pairs_escaped(alice, alice_client):
    acme = actions.organisation_create(actor=alice, name="Acme")
    actions.person_create(actor=alice, first_name="<b>Jon</b>", last_name="Smith", organisation=acme)
    actions.person_create(actor=alice, first_name="<b>John</b>", last_name="Smith", organisation=acme)
    body = alice_client.get("/duplicates/").content.decode()
    assert "&lt;b&gt;Jon&lt;/b&gt;" in body and "<b>Jon" not in body and "Merge…" in body


def test_person_duplicates_page_is_404_for_invisible_person(alice, bob_client):
    p = actions.person_create(actor=alice, first_name="Jane", visibility="private")
    assert bob_client.get(f"/people/{p.pk}/duplicates/").status_code == 404


def test_scales_by_blocking_not_all_pairs(alice):
    """3,000 people in 60 organisations: blocked comparison stays well under a second or two."""
    from rapport.people.models import Organisation

    orgs = [Organisation.objects.create(name=f"Org {i}", owner=alice) for i in range(60)]
    people = [
        Person(first_name=f"Person{i}", last_name=f"Family{i % 997}", organisation=orgs[i % 60], owner=alice)
        for i in range(3000)
    ]
    for p in people:  # bulk_create skips save(), which fills the name keys
        p.refresh_keys()
    Person.objects.bulk_create(people)
    start = time.perf_counter()
    pairs = find_duplicates(user=alice)
    assert time.perf_counter() - start < 5
    # "person12 family12" vs "person1012 family15" style near-misses stay below the threshold
    assert all(p.score >= 90 for p in pairs)
