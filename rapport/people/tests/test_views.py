"""Web screens for people and organisations, driven through the Django test client."""

import re

import pytest

from conftest import login
from rapport.activities.actions import activity_log
from rapport.audit.models import AuditEntry
from rapport.people.actions import identity_add, organisation_create, person_create, person_update
from rapport.people.models import Identity, Organisation, Person, Relationship
from rapport.sales.actions import deal_create, product_create

pytestmark = pytest.mark.django_db


def make_person(actor, first="Ann", last="Lee", **kw):
    return person_create(actor=actor, first_name=first, last_name=last, **kw)


# --- list -------------------------------------------------------------------------------


def test_people_list_shows_rows_with_org_email_phone_and_owner(alice, alice_client):
    org = organisation_create(actor=alice, name="Acme")
    make_person(
        alice,
        title="CTO",
        organisation=org,
        identities=[("email", "ann@acme.com"), ("phone", "+44 20 7946 0958")],
    )
    response = alice_client.get("/people/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ann Lee" in html and "CTO" in html and "Acme" in html
    assert 'href="mailto:ann@acme.com"' in html
    assert 'href="tel:+442079460958"' in html
    assert response.context["nav"] == "people"
    assert 'aria-current="page">People' in html


def test_people_list_pages_with_cursor_and_first_page_link(alice, alice_client):
    for i in range(55):
        make_person(alice, first=f"P{i:03d}", last="Zed")
    first = alice_client.get("/people/?sort=created")
    assert len(first.context["page"].items) == 50
    assert first.context["page"].total == 55
    next_url = (
        re.search(r'rel="next" href="\?([^"]+)"', first.content.decode()).group(1).replace("&amp;", "&")
    )
    assert "sort=created" in next_url
    second = alice_client.get("/people/?" + next_url)
    assert [p.first_name for p in second.context["page"].items] == [f"P{i:03d}" for i in range(50, 55)]
    assert "First page" in second.content.decode()
    assert second.context["page"].next_cursor is None


def test_people_list_total_is_capped_display(alice, alice_client, monkeypatch):
    from rapport.core import pagination

    monkeypatch.setattr(pagination, "CAP", 3)
    for i in range(5):
        make_person(alice, first=f"N{i}")
    html = alice_client.get("/people/").content.decode()
    assert "3+ people" in html


def test_people_list_filters_by_text_vip_and_organisation(alice, alice_client):
    org = organisation_create(actor=alice, name="Globex")
    make_person(alice, first="Zoë", last="Ångström", is_vip=True)
    make_person(alice, first="Bert", last="Brown", organisation=org)
    assert [p.first_name for p in alice_client.get("/people/?q=zoe").context["page"].items] == ["Zoë"]
    assert [p.first_name for p in alice_client.get("/people/?vip=1").context["page"].items] == ["Zoë"]
    by_org = alice_client.get(f"/people/?organisation={org.pk}")
    assert [p.first_name for p in by_org.context["page"].items] == ["Bert"]
    assert f"/export/people.csv?organisation={org.pk}" in by_org.content.decode()


def test_people_list_unknown_sort_or_bad_cursor_is_a_clear_400(alice_client):
    response = alice_client.get("/people/?sort=password")
    assert response.status_code == 400
    assert "Unknown sort order" in response.content.decode()
    response = alice_client.get("/people/?cursor=%%%garbage")
    assert response.status_code == 400
    assert "cursor" in response.content.decode()


def test_people_list_query_count_is_bounded(alice, alice_client, django_assert_max_num_queries):
    org = organisation_create(actor=alice, name="Acme")
    for i in range(60):
        make_person(alice, first=f"Q{i}", organisation=org, identities=[("email", f"q{i}@acme.com")])
    with django_assert_max_num_queries(8):
        response = alice_client.get("/people/")
    assert len(response.context["page"].items) == 50


def test_private_person_is_absent_for_bob_and_detail_is_404(alice, bob_client):
    hidden = make_person(alice, first="Secret", visibility="private")
    assert "Secret" not in bob_client.get("/people/").content.decode()
    assert bob_client.get(f"/people/{hidden.pk}/").status_code == 404
    response = bob_client.post(
        f"/people/{hidden.pk}/edit/", {"first_name": "Pwned", "visibility": "everyone"}
    )
    assert response.status_code == 404
    assert bob_client.post(f"/people/{hidden.pk}/delete/").status_code == 404
    hidden.refresh_from_db()
    assert hidden.first_name == "Secret"


# --- create -----------------------------------------------------------------------------


def test_create_person_with_identities_org_and_tags(alice, alice_client):
    org = organisation_create(actor=alice, name="Acme")
    response = alice_client.post(
        "/people/new/",
        {
            "first_name": "Nadia",
            "last_name": "Haddad",
            "organisation": f"Acme (#{org.pk})",
            "identity_kind": ["email", "phone", "x"],
            "identity_value": ["Nadia@Acme.com", "+33 1 42 68 53 00", ""],
            "tags": "vip, lead",
            "visibility": "team",
        },
    )
    person = Person.objects.get(first_name="Nadia")
    assert response.status_code == 302 and response["Location"] == f"/people/{person.pk}/"
    assert person.organisation == org
    assert person.visibility == "team"
    assert set(person.identities.values_list("value", flat=True)) == {"nadia@acme.com", "+33142685300"}
    assert sorted(person.tags.values_list("name", flat=True)) == ["lead", "vip"]


def test_create_with_organisation_typed_by_exact_name(alice, alice_client):
    org = organisation_create(actor=alice, name="Initech")
    alice_client.post(
        "/people/new/", {"first_name": "Pete", "organisation": "initech", "visibility": "everyone"}
    )
    assert Person.objects.get(first_name="Pete").organisation == org


def test_create_with_unknown_organisation_shows_error_and_keeps_input(alice_client):
    response = alice_client.post(
        "/people/new/", {"first_name": "Pete", "organisation": "Nowhere Inc", "visibility": "everyone"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "No organisation called" in html
    assert 'value="Pete"' in html
    assert not Person.objects.exists()


def test_invalid_email_and_phone_give_inline_errors_and_create_nothing(alice_client):
    response = alice_client.post(
        "/people/new/",
        {
            "first_name": "Bad",
            "identity_kind": ["email", "phone"],
            "identity_value": ["not-an-email", "12"],
            "visibility": "everyone",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "not a valid email address" in html
    assert "is not a" in html and "phone number" in html
    assert 'value="not-an-email"' in html  # nothing lost
    assert not Person.objects.exists()


def test_ten_thousand_character_name_is_an_inline_error_not_a_500(alice_client):
    response = alice_client.post("/people/new/", {"first_name": "x" * 10000, "visibility": "everyone"})
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()
    assert not Person.objects.exists()


def test_person_without_name_or_identity_is_refused(alice_client):
    response = alice_client.post("/people/new/", {"visibility": "everyone"})
    assert response.status_code == 400
    assert "needs a name" in response.content.decode()


def test_script_in_name_is_rendered_escaped(alice, alice_client):
    person = make_person(alice, first="<script>alert(1)</script>", last='"><img src=x onerror=alert(2)>')
    for url in ("/people/", f"/people/{person.pk}/", f"/people/{person.pk}/edit/"):
        html = alice_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_rtl_and_emoji_names_round_trip(alice_client):
    response = alice_client.post(
        "/people/new/", {"first_name": "محمد", "last_name": "🦄 Ünïcode", "visibility": "everyone"}
    )
    assert response.status_code == 302
    person = Person.objects.get()
    html = alice_client.get(f"/people/{person.pk}/").content.decode()
    assert "محمد 🦄 Ünïcode" in html
    assert 'dir="auto"' in html
    assert "محمد" in alice_client.get("/people/?q=محمد").content.decode()


def test_read_only_user_cannot_open_create_form_or_post(reader):
    client = login(reader)
    assert client.get("/people/new/").status_code == 403
    assert client.post("/people/new/", {"first_name": "X", "visibility": "everyone"}).status_code == 403
    assert not Person.objects.exists()
    assert "New person" not in client.get("/people/").content.decode()


# --- detail -----------------------------------------------------------------------------


def test_detail_shows_profile_identities_timeline_and_audit(alice, alice_client):
    person = make_person(alice, identities=[("email", "ann@example.org"), ("phone", "+1 202 555 0143")])
    activity_log(actor=alice, kind="call", person=person, subject="Discovery call", call_direction="outbound")
    person_update(actor=alice, person=person, data={"title": "Head of Ops"}, expected_version=person.version)
    response = alice_client.get(f"/people/{person.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="mailto:ann@example.org"' in html and 'href="tel:+12025550143"' in html
    assert "Discovery call" in html and "Outbound" in html
    assert "Change history" in html
    assert "<strong>title</strong>: — → Head of Ops" in html
    assert f'href="/people/{person.pk}/edit/"' in html


def test_detail_timeline_pages(alice, alice_client):
    person = make_person(alice)
    for i in range(25):
        activity_log(actor=alice, kind="note", person=person, body=f"note {i}")
    first = alice_client.get(f"/people/{person.pk}/")
    assert len(first.context["timeline"].items) == 20
    cursor = first.context["timeline"].next_cursor
    second = alice_client.get(f"/people/{person.pk}/?tl={cursor}")
    assert len(second.context["timeline"].items) == 5
    assert alice_client.get(f"/people/{person.pk}/?tl=broken!").status_code == 200


def test_detail_query_count_does_not_grow_with_the_data(alice, alice_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = organisation_create(actor=alice, name="Acme")
    person = make_person(alice, organisation=org, identities=[("email", "a@acme.com")])

    def add_one(i):
        other = make_person(alice, first=f"O{i}")
        Relationship.objects.create(from_person=person, to_person=other, kind="knows")
        deal = deal_create(actor=alice, name=f"Deal {other.pk}", people=[(person, "champion")])
        activity_log(actor=alice, kind="note", person=person, deal=deal, body="x")
        identity_add(actor=alice, person=person, kind="email", value=f"a{i}@acme.com")

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert alice_client.get(f"/people/{person.pk}/").status_code == 200
        return len(ctx.captured_queries)

    add_one(0)
    alice_client.get(f"/people/{person.pk}/")  # fills the cached blank forms
    before = queries()
    for i in range(1, 6):
        add_one(i)
    assert queries() == before
    response = alice_client.get(f"/people/{person.pk}/")
    assert len(response.context["relationships"]) == 6 and len(response.context["deal_roles"]) == 6


def test_reader_sees_no_edit_controls_and_writes_are_refused(alice, reader):
    person = make_person(alice)
    client = login(reader)
    html = client.get(f"/people/{person.pk}/").content.decode()
    assert f"/people/{person.pk}/edit/" not in html
    assert "Log a note" not in html
    assert client.get(f"/people/{person.pk}/edit/").status_code == 403
    response = client.post(
        f"/people/{person.pk}/edit/", {"first_name": "Hacked", "visibility": "everyone", "version": 1}
    )
    assert response.status_code == 403
    assert (
        client.post(f"/people/{person.pk}/identities/", {"kind": "email", "value": "x@y.com"}).status_code
        == 403
    )
    assert client.post(f"/people/{person.pk}/delete/").status_code == 403
    person.refresh_from_db()
    assert person.first_name == "Ann" and not person.identities.exists()


def test_bob_can_see_but_not_edit_alices_public_person(alice, bob_client):
    person = make_person(alice)
    html = bob_client.get(f"/people/{person.pk}/").content.decode()
    assert "Ann Lee" in html and f"/people/{person.pk}/edit/" not in html
    assert bob_client.post(f"/people/{person.pk}/edit/", {"first_name": "Bob was here"}).status_code == 403
    person.refresh_from_db()
    assert person.first_name == "Ann"


def test_merged_person_redirects_to_survivor(alice, alice_client):
    survivor = make_person(alice, first="Keep")
    loser = make_person(alice, first="Dup")
    Person.objects.filter(pk=loser.pk).update(merged_into=survivor)
    response = alice_client.get(f"/people/{loser.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/people/{survivor.pk}/"


def test_merged_private_person_does_not_redirect_for_outsiders(alice, bob_client):
    survivor = make_person(alice, first="Keep")
    loser = make_person(alice, first="Dup", visibility="private")
    Person.objects.filter(pk=loser.pk).update(merged_into=survivor)
    assert bob_client.get(f"/people/{loser.pk}/").status_code == 404


# --- edit -------------------------------------------------------------------------------


def test_edit_saves_and_records_audit(alice, alice_client):
    person = make_person(alice)
    response = alice_client.post(
        f"/people/{person.pk}/edit/",
        {
            "first_name": "Anna",
            "last_name": "Lee",
            "visibility": "everyone",
            "version": person.version,
            "tags": "a,b",
        },
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.first_name == "Anna" and person.version == 2
    entry = AuditEntry.objects.filter(model="people.person", object_id=person.pk, action="update").first()
    assert entry.changes["first_name"] == ["Ann", "Anna"] and entry.actor == alice


def test_stale_edit_shows_conflict_keeps_input_and_does_not_overwrite(alice, carol, alice_client):
    person = make_person(alice, title="Engineer")
    stale_version = person.version
    person_update(actor=carol, person=person, data={"title": "Director"}, expected_version=stale_version)
    response = alice_client.post(
        f"/people/{person.pk}/edit/",
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "title": "Mine",
            "visibility": "everyone",
            "version": stale_version,
        },
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "Someone else saved this record" in html
    assert "Director" in html  # their value
    assert 'value="Mine"' in html  # my input kept in the form
    assert f'name="version" value="{stale_version + 1}"' in html
    person.refresh_from_db()
    assert person.title == "Director"
    # Saving again on purpose now applies mine.
    response = alice_client.post(
        f"/people/{person.pk}/edit/",
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "title": "Mine",
            "visibility": "everyone",
            "version": stale_version + 1,
        },
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.title == "Mine"


def test_edit_too_long_title_is_inline_error(alice, alice_client):
    person = make_person(alice)
    response = alice_client.post(
        f"/people/{person.pk}/edit/",
        {"first_name": "Ann", "title": "t" * 10000, "visibility": "everyone", "version": 1},
    )
    assert response.status_code == 400
    assert "at most 150 characters" in response.content.decode()


def test_sales_rep_cannot_give_record_to_someone_else(alice, bob, alice_client):
    person = make_person(alice)
    response = alice_client.post(
        f"/people/{person.pk}/edit/",
        {"first_name": "Ann", "visibility": "everyone", "version": 1, "owner": bob.pk},
    )
    # The owner field is not offered to a sales rep; a forged value is ignored.
    person.refresh_from_db()
    assert person.owner == alice
    assert response.status_code == 302


def test_delete_asks_for_confirmation_then_deletes(alice, alice_client):
    person = make_person(alice)
    confirm = alice_client.get(f"/people/{person.pk}/delete/")
    assert confirm.status_code == 200 and "Delete this person?" in confirm.content.decode()
    assert Person.objects.filter(pk=person.pk).exists()
    response = alice_client.post(f"/people/{person.pk}/delete/")
    assert response.status_code == 302
    assert not Person.objects.filter(pk=person.pk).exists()
    assert AuditEntry.objects.filter(model="people.person", object_id=person.pk, action="delete").exists()


# --- inline identity and relationship ---------------------------------------------------


def test_add_and_remove_identity_inline(alice, alice_client):
    person = make_person(alice)
    alice_client.post(f"/people/{person.pk}/identities/", {"kind": "email", "value": "Ann@Example.com"})
    identity = Identity.objects.get(person=person)
    assert identity.value == "ann@example.com"
    response = alice_client.post(
        f"/people/{person.pk}/identities/", {"kind": "phone", "value": "nope"}, follow=True
    )
    assert "not a phone number" in response.content.decode()
    alice_client.post(f"/people/{person.pk}/identities/{identity.pk}/delete/")
    assert not Identity.objects.filter(person=person).exists()


def test_cannot_remove_identity_of_another_person_through_url(alice, alice_client):
    a = make_person(alice, identities=[("email", "a@x.org")])
    b = make_person(alice, first="B", identities=[("email", "b@x.org")])
    other = b.identities.get()
    assert alice_client.post(f"/people/{a.pk}/identities/{other.pk}/delete/").status_code == 404
    assert Identity.objects.filter(pk=other.pk).exists()


def test_relationship_to_invisible_person_is_refused(alice, bob, bob_client):
    mine = make_person(bob, first="Bobs")
    hidden = make_person(alice, first="Hidden", visibility="private")
    response = bob_client.post(
        f"/people/{mine.pk}/relationships/",
        {"kind": "knows", "other": f"#{hidden.pk}", "strength": 50},
        follow=True,
    )
    assert "No person with that number" in response.content.decode()
    assert not Relationship.objects.exists()
    visible_one = make_person(bob, first="Other")
    bob_client.post(
        f"/people/{mine.pk}/relationships/",
        {"kind": "knows", "other": f"Other (#{visible_one.pk})", "strength": 80},
    )
    assert Relationship.objects.get().strength == 80


def test_log_a_call_from_the_person_page_returns_to_it(alice, alice_client):
    person = make_person(alice)
    response = alice_client.post(
        "/activities/new/",
        {
            "kind": "call",
            "subject": "Called",
            "call_direction": "inbound",
            "call_duration_min": "5",
            "call_outcome": "connected",
            "person": f"#{person.pk}",
            "visibility": "everyone",
            "next": f"/people/{person.pk}/#timeline",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/people/{person.pk}/#timeline"
    activity = person.activities.get()
    assert activity.call_duration_s == 300 and activity.call_direction == "inbound"


# --- lookups ----------------------------------------------------------------------------


def test_lookups_return_only_visible_records(alice, bob_client):
    organisation_create(actor=alice, name="Public Co")
    organisation_create(actor=alice, name="Private Co", visibility="private")
    make_person(alice, first="Priv", last="Ate", visibility="private")
    make_person(alice, first="Pub", last="Lic")
    orgs = bob_client.get("/organisations/lookup/?q=pr").json()["results"]
    assert orgs == []
    orgs = bob_client.get("/organisations/lookup/?q=pub").json()["results"]
    assert [o["label"] for o in orgs] == ["Public Co"]
    assert orgs[0]["value"].endswith(f"(#{orgs[0]['id']})")
    people = bob_client.get("/people/lookup/?q=p").json()["results"]
    assert people == []  # too short
    people = bob_client.get("/people/lookup/?q=pri").json()["results"]
    assert people == []


# --- organisations ----------------------------------------------------------------------


def test_organisation_create_detail_and_edit(alice, alice_client):
    response = alice_client.post(
        "/organisations/new/",
        {
            "name": "Umbrella",
            "domains": "umbrella.com, www.umbrella.co.uk",
            "industry": "Pharma",
            "employees": "500",
            "visibility": "everyone",
        },
    )
    org = Organisation.objects.get(name="Umbrella")
    assert response["Location"] == f"/organisations/{org.pk}/"
    assert sorted(org.domains.values_list("domain", flat=True)) == ["umbrella.co.uk", "umbrella.com"]
    html = alice_client.get(f"/organisations/{org.pk}/").content.decode()
    assert "Pharma" in html and "umbrella.com" in html
    response = alice_client.post(
        f"/organisations/{org.pk}/edit/",
        {
            "name": "Umbrella Corp",
            "domains": "umbrella.com",
            "employees": "abc",
            "visibility": "everyone",
            "version": 1,
        },
    )
    assert response.status_code == 400 and "Enter a whole number" in response.content.decode()
    response = alice_client.post(
        f"/organisations/{org.pk}/edit/",
        {
            "name": "Umbrella Corp",
            "domains": "umbrella.com",
            "employees": "600",
            "visibility": "everyone",
            "version": 1,
        },
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "Umbrella Corp" and org.employees == 600
    assert list(org.domains.values_list("domain", flat=True)) == ["umbrella.com"]


def test_organisation_detail_lists_people_deals_subsidiaries_and_orders(alice, admin, alice_client):
    parent = organisation_create(actor=alice, name="Holding")
    org = organisation_create(actor=alice, name="Acme", parent=parent)
    organisation_create(actor=alice, name="Acme Labs", parent=org)
    make_person(alice, first="Worker", organisation=org)
    deal_create(actor=alice, name="Big renewal", organisation=org, amount="1000")
    product = product_create(actor=admin, name="Widget", sku="W-1", price="10")
    response = alice_client.post(
        f"/organisations/{org.pk}/orders/",
        {"product": product.pk, "quantity": "3", "started_on": "2024-01-01"},
    )
    assert response.status_code == 302
    html = alice_client.get(f"/organisations/{org.pk}/").content.decode()
    for text in ("Worker", "Big renewal", "Acme Labs", "Holding", "Widget", "30.00"):
        assert text in html
    bad = alice_client.post(
        f"/organisations/{org.pk}/orders/", {"product": product.pk, "quantity": "0"}, follow=True
    )
    assert "greater than or equal to 1" in bad.content.decode()
    assert org.orders.count() == 1


def test_organisation_stale_edit_conflict(alice, carol, alice_client):
    from rapport.people.actions import organisation_update

    org = organisation_create(actor=alice, name="Acme")
    organisation_update(actor=carol, org=org, data={"industry": "Steel"}, expected_version=1)
    response = alice_client.post(
        f"/organisations/{org.pk}/edit/",
        {"name": "Acme", "industry": "Paper", "visibility": "everyone", "version": 1},
    )
    assert response.status_code == 409
    assert 'value="Paper"' in response.content.decode()
    org.refresh_from_db()
    assert org.industry == "Steel"


def test_private_organisation_is_hidden_from_bob(alice, bob_client):
    org = organisation_create(actor=alice, name="Skunkworks", visibility="private")
    make_person(alice, first="Visible", organisation=org)
    assert bob_client.get(f"/organisations/{org.pk}/").status_code == 404
    assert "Skunkworks" not in bob_client.get("/organisations/").content.decode()
    # The person is public, but their private employer's name is not shown to Bob.
    assert "Skunkworks" not in bob_client.get("/people/").content.decode()
    assert bob_client.post(f"/organisations/{org.pk}/edit/", {"name": "X"}).status_code == 404


def test_organisation_list_filters_and_nav(alice, alice_client):
    organisation_create(actor=alice, name="Alpha", industry="Retail")
    organisation_create(actor=alice, name="Beta", industry="Energy")
    response = alice_client.get("/organisations/?industry=Energy")
    assert [o.name for o in response.context["page"].items] == ["Beta"]
    assert response.context["nav"] == "orgs"
