import pytest

from rapport.people.actions import organisation_create, person_create
from rapport.people.models import Identity, Organisation, OrganisationDomain, Person


def test_person_round_trip_create_read_update_delete(alice_api, alice):
    r = alice_api.post(
        "/people",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": "Analyst",
            "identities": [
                {"kind": "email", "value": "Ada@Example.ORG", "label": "work"},
                {"kind": "phone", "value": "+44 20 7946 0958"},
            ],
            "tags": ["vip", "math"],
            "custom": {"shoe_size": 38, "nickname": "Countess"},
        },
    )
    assert r.status_code == 201, r.content
    person = r.json()
    assert person["full_name"] == "Ada Lovelace"
    assert person["primary_email"] == "ada@example.org"
    assert person["primary_phone"] == "+442079460958"
    assert {(i["kind"], i["label"]) for i in person["identities"]} == {("email", "work"), ("phone", "")}
    assert sorted(person["tags"]) == ["math", "vip"]
    assert person["custom"] == {"shoe_size": 38, "nickname": "Countess"}
    assert person["owner"]["username"] == "alice"
    assert person["version"] == 1

    pid = person["id"]
    assert alice_api.get(f"/people/{pid}").json()["title"] == "Analyst"

    r = alice_api.patch(f"/people/{pid}", {"title": "Countess", "tags": ["vip"], "custom": {"a": True}})
    assert r.status_code == 200, r.content
    assert r.json()["title"] == "Countess"
    assert r.json()["tags"] == ["vip"]
    assert r.json()["custom"] == {"a": True}
    assert r.json()["version"] == 2

    assert alice_api.delete(f"/people/{pid}").status_code == 204
    assert alice_api.get(f"/people/{pid}").status_code == 404
    assert not Person.objects.filter(pk=pid).exists()


def test_invalid_email_is_400_with_field_message(alice_api):
    r = alice_api.post(
        "/people", {"first_name": "X", "identities": [{"kind": "email", "value": "not-an-email"}]}
    )
    assert r.status_code == 400
    assert "not-an-email" in r.json()["errors"]["identities"][0]
    assert not Person.objects.exists()


def test_invalid_phone_is_400_with_field_message(alice_api):
    r = alice_api.post("/people", {"first_name": "X", "identities": [{"kind": "phone", "value": "12"}]})
    assert r.status_code == 400
    assert r.json()["errors"]["identities"]


def test_identity_add_and_remove(alice_api, alice):
    person = person_create(actor=alice, first_name="Grace")
    r = alice_api.post(
        f"/people/{person.pk}/identities", {"kind": "x", "value": "@GraceH", "label": "personal"}
    )
    assert r.status_code == 201, r.content
    assert r.json()["value"] == "graceh"
    bad = alice_api.post(f"/people/{person.pk}/identities", {"kind": "email", "value": "nope"})
    assert bad.status_code == 400
    assert bad.json()["errors"]["value"]
    ident_id = r.json()["id"]
    assert alice_api.delete(f"/people/{person.pk}/identities/{ident_id}").status_code == 204
    assert not Identity.objects.filter(pk=ident_id).exists()
    assert alice_api.delete(f"/people/{person.pk}/identities/{ident_id}").status_code == 404


def test_identity_of_another_person_cannot_be_removed_through_this_one(alice_api, alice):
    a = person_create(actor=alice, first_name="A")
    b = person_create(actor=alice, first_name="B", identities=[("email", "b@example.com")])
    ident = b.identities.get()
    assert alice_api.delete(f"/people/{a.pk}/identities/{ident.pk}").status_code == 404
    assert Identity.objects.filter(pk=ident.pk).exists()


def test_relationships_list_and_add(alice_api, alice):
    a = person_create(actor=alice, first_name="A")
    b = person_create(actor=alice, first_name="B")
    r = alice_api.post(f"/people/{a.pk}/relationships", {"to_person": b.pk, "kind": "knows", "strength": 80})
    assert r.status_code == 201, r.content
    assert (
        alice_api.post(f"/people/{a.pk}/relationships", {"to_person": b.pk, "kind": "enemy"}).status_code
        == 400
    )
    assert (
        alice_api.post(f"/people/{a.pk}/relationships", {"to_person": a.pk, "kind": "knows"}).status_code
        == 400
    )
    out = alice_api.get(f"/people/{a.pk}/relationships").json()
    assert [(x["direction"], x["kind"], x["other"]["id"], x["strength"]) for x in out] == [
        ("out", "knows", b.pk, 80)
    ]
    back = alice_api.get(f"/people/{b.pk}/relationships").json()
    assert back[0]["direction"] == "in"


def test_relationship_to_an_invisible_person_is_hidden_and_cannot_be_added(alice_api, alice, bob):
    mine = person_create(actor=alice, first_name="Mine")
    secret = person_create(actor=bob, first_name="Secret", visibility="private")
    r = alice_api.post(f"/people/{mine.pk}/relationships", {"to_person": secret.pk, "kind": "knows"})
    assert r.status_code == 400
    from rapport.people.actions import relationship_add

    relationship_add(actor=bob, from_person=secret, to_person=mine, kind="knows")
    assert alice_api.get(f"/people/{mine.pk}/relationships").json() == []


def test_people_pagination_walks_all_pages_without_duplicates_or_gaps(alice_api, alice):
    for i in range(23):
        person_create(actor=alice, first_name=f"P{i:02d}", last_name="Same")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = alice_api.get("/people", **params).json()
        assert body["total"] == 23
        assert body["total_capped"] is False
        seen += [p["id"] for p in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == set(Person.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("sort", ["name", "-name", "created", "-created"])
def test_every_sort_pages_cleanly(alice_api, alice, sort):
    for i in range(7):
        person_create(actor=alice, first_name=f"N{i}")
    first = alice_api.get("/people", limit=4, sort=sort).json()
    second = alice_api.get("/people", limit=4, sort=sort, cursor=first["next_cursor"]).json()
    ids = [p["id"] for p in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 7


def test_people_filters(alice_api, alice):
    org = organisation_create(actor=alice, name="Acme")
    person_create(actor=alice, first_name="Zed", organisation=org, tags=["hot"], is_vip=True)
    person_create(actor=alice, first_name="Amy", identities=[("email", "amy@example.com")])
    names = lambda **q: [p["first_name"] for p in alice_api.get("/people", **q).json()["items"]]  # noqa: E731
    assert names(q="ze") == ["Zed"]
    assert names(q="amy@ex") == ["Amy"]
    assert names(organisation=org.pk) == ["Zed"]
    assert names(tag="hot") == ["Zed"]
    assert names(vip="true") == ["Zed"]
    assert names(vip="false") == ["Amy"]
    assert names(sort="name") == ["Amy", "Zed"]
    assert names(sort="-name") == ["Zed", "Amy"]


def test_unknown_sort_is_400(alice_api):
    r = alice_api.get("/people", sort="password")
    assert r.status_code == 400
    assert "sort" in r.json()["errors"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "W10",  # [] : wrong length
        "WyJhIiwgImIiXQ",  # ["a", "b"]: right length, wrong type for id
        "x" * 900,
    ],
)
def test_bad_cursor_is_400_not_500(alice_api, alice, cursor):
    person_create(actor=alice, first_name="A")
    r = alice_api.get("/people", cursor=cursor)
    assert r.status_code == 400, r.content
    assert "cursor" in r.json()["errors"]


def test_cursor_with_an_id_too_big_for_the_database_is_not_a_500(alice_api, alice):
    person_create(actor=alice, first_name="A")
    r = alice_api.get("/people", cursor="WyJhIiwgOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ")  # ["a", 10**24]
    assert r.status_code in (200, 400)


@pytest.mark.parametrize("limit", [0, 201, -1, "many"])
def test_limit_out_of_range_is_422(alice_api, limit):
    assert alice_api.get("/people", limit=limit).status_code == 422


def test_bad_ids_and_types_never_500(alice_api, alice):
    assert alice_api.get("/people/abc").status_code in (404, 422)
    assert alice_api.get("/people/999999").status_code == 404
    assert alice_api.get(f"/people/{10**30}").status_code in (404, 422)
    assert alice_api.patch("/people/999999", {"title": "x"}).status_code == 404
    assert alice_api.delete("/people/999999").status_code == 404
    assert alice_api.post("/people", {"first_name": 12}).status_code == 422
    assert alice_api.post("/people", {"first_name": "x" * 100_000}).status_code == 422
    assert alice_api.post("/people", {"first_name": "a\x00b"}).status_code == 422
    assert alice_api.post("/people", {"first_name": "A", "organisation": "abc"}).status_code == 422
    assert alice_api.post("/people", {"first_name": "A", "organisation": 424242}).status_code == 400
    assert alice_api.post("/people", {"first_name": "A", "custom": {"x": {"nested": 1}}}).status_code == 422
    assert alice_api.post("/people", {"first_name": "A", "custom": {"x": float("nan")}}).status_code == 422
    assert alice_api.post("/people", raw="{not json").status_code in (400, 422)
    assert alice_api.post("/people", raw="[1, 2]").status_code in (400, 422)
    assert alice_api.get("/people", q="x" * 5000).status_code == 422
    assert alice_api.patch("/people/abc", {"title": "x"}).status_code in (404, 422)
    assert not Person.objects.exists()


def test_null_for_a_required_field_is_400(alice_api, alice):
    person = person_create(actor=alice, first_name="A")
    r = alice_api.patch(f"/people/{person.pk}", {"first_name": None})
    assert r.status_code == 400
    person.refresh_from_db()
    assert person.first_name == "A"


def test_person_list_uses_a_fixed_number_of_queries(alice_api, alice, django_assert_max_num_queries):
    org = organisation_create(actor=alice, name="Acme")
    for i in range(3):
        person_create(
            actor=alice,
            first_name=f"S{i}",
            organisation=org,
            identities=[("email", f"s{i}@x.org")],
            tags=["t"],
        )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    alice_api.get("/me")  # the token's last-use stamp is written once a minute, not per page
    with CaptureQueriesContext(connection) as small:
        assert alice_api.get("/people").status_code == 200
    for i in range(20):
        person_create(
            actor=alice,
            first_name=f"L{i}",
            organisation=org,
            identities=[("email", f"l{i}@x.org")],
            tags=["t"],
        )
    with CaptureQueriesContext(connection) as large:
        assert len(alice_api.get("/people").json()["items"]) == 23
    assert len(large.captured_queries) == len(small.captured_queries)


def test_organisation_round_trip_with_domains_and_parent(alice_api, alice):
    parent = alice_api.post("/organisations", {"name": "Holding"}).json()
    r = alice_api.post(
        "/organisations",
        {
            "name": "Acme",
            "domains": ["www.Acme.example", "acme.test"],
            "parent": parent["id"],
            "employees": 12,
        },
    )
    assert r.status_code == 201, r.content
    org = r.json()
    assert org["domains"] == ["acme.example", "acme.test"]
    assert org["parent"] == {"id": parent["id"], "name": "Holding"}
    r = alice_api.patch(f"/organisations/{org['id']}", {"domains": ["acme.example"], "industry": "Anvils"})
    assert r.status_code == 200, r.content
    assert r.json()["domains"] == ["acme.example"]
    assert r.json()["industry"] == "Anvils"
    assert list(OrganisationDomain.objects.values_list("domain", flat=True)) == ["acme.example"]
    listed = alice_api.get("/organisations", q="acme.ex").json()
    assert [o["id"] for o in listed["items"]] == [org["id"]]
    assert alice_api.delete(f"/organisations/{org['id']}").status_code == 204
    assert not Organisation.objects.filter(pk=org["id"]).exists()


def test_organisation_parent_loop_is_refused(alice_api, alice):
    a = organisation_create(actor=alice, name="A")
    b = organisation_create(actor=alice, name="B", parent=a)
    r = alice_api.patch(f"/organisations/{a.pk}", {"parent": b.pk})
    assert r.status_code == 400
    assert "parent" in r.json()["errors"]
    a.refresh_from_db()
    assert a.parent_id is None


def test_organisation_bad_domain_is_400(alice_api):
    r = alice_api.post("/organisations", {"name": "A", "domains": ["not a domain"]})
    assert r.status_code == 400
    assert r.json()["errors"]["domains"]
    assert not Organisation.objects.exists()


def test_search_finds_people_organisations_and_deals(alice_api, alice):
    person_create(actor=alice, first_name="Zebulon")
    organisation_create(actor=alice, name="Zebra Ltd")
    body = alice_api.get("/search", q="zeb").json()
    groups = {g["key"]: [r["title"] for r in g["results"]] for g in body["groups"]}
    assert groups["people"] == ["Zebulon"]
    assert groups["organisations"] == ["Zebra Ltd"]
