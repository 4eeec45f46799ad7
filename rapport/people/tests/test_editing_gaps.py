"""Custom fields, relationship removal, employments and addresses on the person and
organisation pages: reachable, audited, and closed to whoever may not change the record."""

import pytest

from conftest import login
from rapport.audit.models import AuditEntry
from rapport.core.errors import ActionError
from rapport.people.actions import (
    address_add,
    employment_add,
    organisation_create,
    person_create,
    person_update,
    relationship_add,
)
from rapport.people.models import Address, Employment, Organisation, Person, Relationship

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


def _audited(obj, key):
    return AuditEntry.objects.filter(model=obj._meta.label_lower, object_id=obj.pk, changes__has_key=key)


def _edit_post(person, **extra):
    data = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "visibility": person.visibility,
        "version": person.version,
    }
    data.update(extra)
    return data


# --- custom fields ------------------------------------------------------------------------


def test_custom_fields_are_shown_escaped_on_person_and_organisation_pages(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann", custom={HOSTILE: HOSTILE, "items": "x", "n": 3})
    org = organisation_create(actor=alice, name="Acme", custom={"Tier": HOSTILE})
    for url in (f"/people/{person.pk}/", f"/organisations/{org.pk}/"):
        html = alice_client.get(url).content.decode()
        assert "Custom fields" in html
        assert HOSTILE not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    html = alice_client.get(f"/people/{person.pk}/").content.decode()
    assert '<dt dir="auto">items</dt>' in html  # a key called "items" is a field, not dict.items


def test_person_edit_form_saves_custom_rows_keeps_types_and_audits(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann", custom={"shoe": 38, "old": "x"})
    form = alice_client.get(f"/people/{person.pk}/edit/").content.decode()
    assert 'name="custom_key" value="shoe"' in form and 'name="custom_value" value="38"' in form
    data = _edit_post(person, custom_key=["shoe", "colour", ""], custom_value=["38", "blue", ""])
    response = alice_client.post(f"/people/{person.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    person.refresh_from_db()
    assert person.custom == {"shoe": 38, "colour": "blue"}  # 38 stays a number, "old" removed
    assert _audited(person, "custom").exists()


def test_custom_field_errors_are_shown_and_nothing_changes(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann", custom={"a": "1"})
    cases = [
        (["k" * 61], ["v"], "at most 60"),
        (["k"], ["v" * 1001], "at most 1000"),
        ([f"k{i}" for i in range(51)], ["v"] * 51, "At most 50"),
        (["", "dup", "dup"], ["orphan", "1", "2"], "needs a name"),
    ]
    for keys, values, message in cases:
        response = alice_client.post(
            f"/people/{person.pk}/edit/", _edit_post(person, custom_key=keys, custom_value=values)
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert message in html
        assert 'class="custom-fields field-error"' in html
        person.refresh_from_db()
        assert person.custom == {"a": "1"}


def test_organisation_edit_form_saves_custom_rows(alice, alice_client):
    org = organisation_create(actor=alice, name="Acme")
    data = {
        "name": "Acme",
        "visibility": org.visibility,
        "version": org.version,
        "custom_key": ["Tier"],
        "custom_value": ["Gold"],
    }
    response = alice_client.post(f"/organisations/{org.pk}/edit/", data)
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.custom == {"Tier": "Gold"}
    assert _audited(org, "custom").exists()


def test_person_update_action_validates_custom_for_every_caller(alice):
    person = person_create(actor=alice, first_name="Ann")
    with pytest.raises(ActionError) as exc:
        person_update(actor=alice, person=person, data={"custom": {"x": {"nested": 1}}})
    assert exc.value.field_errors["custom"]
    with pytest.raises(ActionError):
        person_update(actor=alice, person=person, data={"custom": ["not", "a", "dict"]})
    person.refresh_from_db()
    assert person.custom == {}


# --- relationships ------------------------------------------------------------------------


def test_relationship_remove_button_removes_and_audits_both_people(alice, alice_client):
    ann = person_create(actor=alice, first_name="Ann")
    bo = person_create(actor=alice, first_name="Bo")
    rel = relationship_add(actor=alice, from_person=ann, to_person=bo, kind="knows")
    html = alice_client.get(f"/people/{bo.pk}/").content.decode()
    assert f"/people/{bo.pk}/relationships/{rel.pk}/delete/" in html
    response = alice_client.post(f"/people/{bo.pk}/relationships/{rel.pk}/delete/")
    assert response.status_code == 302
    assert not Relationship.objects.exists()
    assert _audited(ann, "relationship:knows").count() == 2  # added, removed
    assert _audited(bo, "relationship:knows").exists()


def test_relationship_of_another_person_cannot_be_removed_through_this_one(alice, alice_client):
    ann, bo, cy = (person_create(actor=alice, first_name=n) for n in ("Ann", "Bo", "Cy"))
    rel = relationship_add(actor=alice, from_person=ann, to_person=bo, kind="knows")
    assert alice_client.post(f"/people/{cy.pk}/relationships/{rel.pk}/delete/").status_code == 404
    assert Relationship.objects.filter(pk=rel.pk).exists()


# --- employments and addresses -------------------------------------------------------------


def test_employment_add_and_end_from_the_person_page(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann")
    org = organisation_create(actor=alice, name="Acme")
    response = alice_client.post(
        f"/people/{person.pk}/employments/",
        {"organisation": f"Acme (#{org.pk})", "title": "CTO", "started_on": "2020-01-01"},
    )
    assert response.status_code == 302
    job = Employment.objects.get(person=person)
    assert (job.title, job.is_current, str(job.started_on)) == ("CTO", True, "2020-01-01")
    html = alice_client.get(f"/people/{person.pk}/").content.decode()
    assert f"/people/{person.pk}/employments/{job.pk}/end/" in html
    alice_client.post(f"/people/{person.pk}/employments/{job.pk}/end/", {"ended_on": "2024-06-30"})
    job.refresh_from_db()
    assert (job.is_current, str(job.ended_on)) == (False, "2024-06-30")
    assert _audited(person, "employment").count() == 2


def test_employment_with_bad_dates_or_unknown_org_changes_nothing(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann")
    org = organisation_create(actor=alice, name="Acme")
    url = f"/people/{person.pk}/employments/"
    r1 = alice_client.post(
        url, {"organisation": f"#{org.pk}", "started_on": "2024-01-01", "ended_on": "2020-01-01"}, follow=True
    )
    assert "ends before it starts" in r1.content.decode()
    r2 = alice_client.post(url, {"organisation": "Nowhere Ltd", "started_on": "not a date"}, follow=True)
    assert r2.status_code == 200
    assert not Employment.objects.filter(person=person).exists()


def test_address_add_edit_remove_from_the_person_page(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann")
    base = f"/people/{person.pk}/addresses/"
    assert alice_client.post(base, {"label": "home", "street": HOSTILE, "city": "Paris"}).status_code == 302
    address = Address.objects.get(person=person)
    html = alice_client.get(f"/people/{person.pk}/").content.decode()
    assert HOSTILE not in html and "Paris" in html
    alice_client.post(f"{base}{address.pk}/", {"label": "home", "street": "1 Rue", "city": "Lyon"})
    address.refresh_from_db()
    assert (address.street, address.city) == ("1 Rue", "Lyon")
    alice_client.post(f"{base}{address.pk}/delete/")
    assert not Address.objects.filter(person=person).exists()
    assert _audited(person, "address").count() == 3


def test_empty_address_is_refused_with_a_message(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann")
    response = alice_client.post(f"/people/{person.pk}/addresses/", {"label": "home"}, follow=True)
    assert "needs at least" in response.content.decode()
    assert not Address.objects.exists()


# --- access ---------------------------------------------------------------------------------


def test_bob_cannot_touch_alices_private_person_through_any_new_screen(alice, bob_client):
    person = person_create(actor=alice, first_name="Ann", visibility="private", custom={"a": "1"})
    other = person_create(actor=alice, first_name="Bo", visibility="private")
    org = organisation_create(actor=alice, name="Acme")
    rel = relationship_add(actor=alice, from_person=person, to_person=other, kind="knows")
    job = employment_add(actor=alice, person=person, organisation=org)
    address = address_add(actor=alice, person=person, data={"city": "Paris"})
    base = f"/people/{person.pk}"
    posts = [
        (
            f"{base}/edit/",
            {"first_name": "X", "visibility": "everyone", "custom_key": "b", "custom_value": "2"},
        ),
        (f"{base}/relationships/{rel.pk}/delete/", {}),
        (f"{base}/employments/", {"organisation": f"#{org.pk}"}),
        (f"{base}/employments/{job.pk}/end/", {}),
        (f"{base}/addresses/", {"city": "Berlin"}),
        (f"{base}/addresses/{address.pk}/", {"city": "Berlin"}),
        (f"{base}/addresses/{address.pk}/delete/", {}),
    ]
    for url, data in posts:
        assert bob_client.post(url, data).status_code == 404, url
    person.refresh_from_db()
    assert person.custom == {"a": "1"} and person.first_name == "Ann"
    assert Relationship.objects.filter(pk=rel.pk).exists()
    assert Employment.objects.get(pk=job.pk).is_current
    assert list(Address.objects.values_list("city", flat=True)) == ["Paris"]


def test_read_only_user_gets_403_and_sees_no_edit_controls(alice, reader):
    person = person_create(actor=alice, first_name="Ann", custom={"a": "1"})
    address = address_add(actor=alice, person=person, data={"city": "Paris"})
    client = login(reader)
    html = client.get(f"/people/{person.pk}/").content.decode()
    assert "Add address" not in html and "Add employment" not in html
    assert client.post(f"/people/{person.pk}/addresses/{address.pk}/delete/").status_code == 403
    assert client.post(f"/people/{person.pk}/addresses/", {"city": "X"}).status_code == 403
    assert Address.objects.count() == 1


def test_employment_at_an_invisible_organisation_cannot_be_ended(alice, bob, bob_client):
    person = person_create(actor=bob, first_name="Ann")
    hidden = organisation_create(actor=alice, name="Secret", visibility="private")
    job = Employment.objects.create(person=person, organisation=hidden)
    assert bob_client.post(f"/people/{person.pk}/employments/{job.pk}/end/").status_code == 404
    assert Employment.objects.get(pk=job.pk).is_current
    assert "Secret" not in bob_client.get(f"/people/{person.pk}/").content.decode()
    assert Organisation.objects.filter(pk=hidden.pk).exists() and Person.objects.filter(pk=person.pk).exists()
