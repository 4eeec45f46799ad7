"""Two teams, one private deal: Bob from South must never learn about Alice's deal, and
nothing he sends may change it."""

import pytest

from rapport.activities.actions import activity_log
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create, pipeline_ensure_default
from rapport.sales.models import Deal


@pytest.fixture
def private_deal(alice):
    pipeline_ensure_default()
    return deal_create(actor=alice, name="Zeppelin secret", amount=5000, visibility="private")


def _snapshot(deal):
    deal.refresh_from_db()
    return (deal.name, deal.stage_id, deal.status, deal.amount, deal.version, deal.owner_id, deal.visibility)


def test_bob_never_sees_alices_private_deal(bob_api, alice_api, private_deal):
    mine = alice_api.get("/deals").json()
    assert [d["id"] for d in mine["items"]] == [private_deal.pk]
    listed = bob_api.get("/deals").json()
    assert listed["items"] == []
    assert listed["total"] == 0
    assert bob_api.get("/deals", q="zep").json()["total"] == 0
    assert bob_api.get(f"/deals/{private_deal.pk}").status_code == 404
    groups = {g["key"]: g["results"] for g in bob_api.get("/search", q="zeppelin").json()["groups"]}
    assert groups["deals"] == []
    assert [
        r["title"]
        for r in {g["key"]: g["results"] for g in alice_api.get("/search", q="zeppelin").json()["groups"]}[
            "deals"
        ]
    ] == ["Zeppelin secret"]


def test_bobs_writes_on_alices_private_deal_are_404_and_change_nothing(bob_api, private_deal, bob):
    before = _snapshot(private_deal)
    lost = private_deal.pipeline.stages.get(is_lost=True)
    assert bob_api.patch(f"/deals/{private_deal.pk}", {"name": "mine now"}).status_code == 404
    assert bob_api.post(f"/deals/{private_deal.pk}/move", {"stage": lost.pk}).status_code == 404
    assert bob_api.delete(f"/deals/{private_deal.pk}").status_code == 404
    p = person_create(actor=bob, first_name="Bobs")
    assert bob_api.post(f"/deals/{private_deal.pk}/participants", {"person": p.pk}).status_code == 404
    assert _snapshot(private_deal) == before
    assert Deal.objects.filter(pk=private_deal.pk).exists()


def test_bob_cannot_attach_his_records_to_alices_private_deal(bob_api, private_deal):
    r = bob_api.post("/activities", {"kind": "note", "body": "hi", "deal": private_deal.pk})
    assert r.status_code == 400
    assert private_deal.activities.count() == 0


def test_activity_on_a_private_deal_does_not_reveal_it(bob_api, alice, private_deal):
    # A shared activity on Alice's private deal: Bob may see the note, not the deal's name.
    activity_log(actor=alice, kind="note", body="shared", deal=private_deal, visibility="everyone")
    items = bob_api.get("/activities").json()["items"]
    assert len(items) == 1
    assert items[0]["deal"] is None


def test_shared_deal_with_a_private_participant_hides_the_participant(bob_api, alice, bob):
    pipeline_ensure_default()
    secret = person_create(actor=alice, first_name="Hidden", visibility="private")
    deal = deal_create(actor=alice, name="Open deal", people=[(secret, "champion")])
    body = bob_api.get(f"/deals/{deal.pk}").json()
    assert body["participants"] == []


def test_visible_but_not_editable_is_refused_and_unchanged(bob_api, alice):
    pipeline_ensure_default()
    deal = deal_create(actor=alice, name="Everyone sees", visibility="everyone")
    assert bob_api.get(f"/deals/{deal.pk}").status_code == 200
    assert bob_api.patch(f"/deals/{deal.pk}", {"name": "x"}).status_code in (403, 404)
    deal.refresh_from_db()
    assert deal.name == "Everyone sees"


def test_rep_giving_a_record_to_someone_else_is_400_and_changes_nothing(alice_api, alice, bob):
    pipeline_ensure_default()
    r = alice_api.post("/deals", {"name": "Gift", "owner": bob.pk})
    assert r.status_code == 400
    assert "owner" in r.json()["errors"]
    assert not Deal.objects.exists()
    deal = deal_create(actor=alice, name="Keep")
    r = alice_api.patch(f"/deals/{deal.pk}", {"owner": bob.pk, "name": "renamed"})
    assert r.status_code == 400
    deal.refresh_from_db()
    assert (deal.owner_id, deal.name, deal.version) == (alice.pk, "Keep", 1)
    person = person_create(actor=alice, first_name="P")
    assert alice_api.patch(f"/people/{person.pk}", {"owner": bob.pk}).status_code == 400
    person.refresh_from_db()
    assert person.owner_id == alice.pk


def test_rep_sharing_with_a_team_not_their_own_is_400(alice_api, alice, south):
    person = person_create(actor=alice, first_name="P")
    r = alice_api.patch(f"/people/{person.pk}", {"team": south.pk})
    assert r.status_code == 400
    assert "team" in r.json()["errors"]
    person.refresh_from_db()
    assert person.team_id != south.pk


def test_manager_may_assign_to_someone_else(carol_api, alice):
    r = carol_api.post("/people", {"first_name": "Given", "owner": alice.pk})
    assert r.status_code == 201, r.content
    assert r.json()["owner"]["id"] == alice.pk


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", 999),
        ("version", 7),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("status", "won"),
        ("sort_key", "a"),
        ("merged_into", 1),
    ],
)
def test_read_only_and_unknown_fields_in_the_body_are_422(alice_api, alice, field, value):
    pipeline_ensure_default()
    r = alice_api.post("/deals", {"name": "D", field: value})
    assert r.status_code == 422, r.content
    assert field in r.json()["errors"]
    assert not Deal.objects.exists()
    deal = deal_create(actor=alice, name="D")
    assert alice_api.patch(f"/deals/{deal.pk}", {field: value}).status_code == 422
    person = person_create(actor=alice, first_name="P")
    assert alice_api.patch(f"/people/{person.pk}", {field: value}).status_code == 422
    deal.refresh_from_db()
    person.refresh_from_db()
    assert deal.version == person.version == 1


def test_stale_version_is_409_with_current_version_and_changes_nothing(alice_api, alice):
    person = person_create(actor=alice, first_name="Orig")
    assert alice_api.patch(f"/people/{person.pk}?version=1", {"title": "first"}).status_code == 200
    r = alice_api.patch(f"/people/{person.pk}?version=1", {"title": "second"})
    assert r.status_code == 409
    assert r.json()["current_version"] == 2
    person.refresh_from_db()
    assert person.title == "first"
    r = alice_api.client.patch(
        f"/api/v1/people/{person.pk}",
        '{"title": "third"}',
        content_type="application/json",
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 409
    assert alice_api.patch(f"/people/{person.pk}?version=2", {"title": "third"}).json()["version"] == 3


def test_stale_version_on_organisation_and_activity(alice_api, alice):
    org = organisation_create(actor=alice, name="O")
    alice_api.patch(f"/organisations/{org.pk}", {"industry": "x"})
    assert alice_api.patch(f"/organisations/{org.pk}?version=1", {"industry": "y"}).status_code == 409
    act = activity_log(actor=alice, kind="note", body="b", organisation=org)
    alice_api.patch(f"/activities/{act.pk}", {"body": "c"})
    assert alice_api.patch(f"/activities/{act.pk}?version=1", {"body": "d"}).status_code == 409
    act.refresh_from_db()
    assert act.body == "c"


def test_read_only_user_cannot_write_anything(reader_api, alice):
    pipeline_ensure_default()
    person = person_create(actor=alice, first_name="P", visibility="team")
    org = organisation_create(actor=alice, name="O")
    deal = deal_create(actor=alice, name="D")
    assert reader_api.get(f"/people/{person.pk}").status_code == 200
    attempts = [
        reader_api.post("/people", {"first_name": "R"}),
        reader_api.patch(f"/people/{person.pk}", {"first_name": "R"}),
        reader_api.delete(f"/people/{person.pk}"),
        reader_api.post(f"/people/{person.pk}/identities", {"kind": "email", "value": "r@x.org"}),
        reader_api.post("/organisations", {"name": "R"}),
        reader_api.patch(f"/organisations/{org.pk}", {"name": "R"}),
        reader_api.post("/deals", {"name": "R"}),
        reader_api.post(f"/deals/{deal.pk}/move", {"stage": deal.stage_id}),
        reader_api.delete(f"/deals/{deal.pk}"),
        reader_api.post("/activities", {"kind": "note", "body": "r", "person": person.pk}),
        reader_api.post(f"/organisations/{org.pk}/orders", {"product": 1}),
    ]
    assert all(r.status_code in (400, 403) for r in attempts), [r.status_code for r in attempts]
    person.refresh_from_db()
    org.refresh_from_db()
    deal.refresh_from_db()
    assert (person.first_name, person.version, org.name, deal.version) == ("P", 1, "O", 1)
    assert person.identities.count() == 0
    from rapport.activities.models import Activity
    from rapport.people.models import Organisation, Person

    assert (Person.objects.count(), Organisation.objects.count(), Deal.objects.count()) == (1, 1, 1)
    assert Activity.objects.count() == 0


def test_private_person_invisible_to_other_team_in_list_detail_and_search(bob_api, alice):
    person = person_create(actor=alice, first_name="Quentin", visibility="private")
    assert bob_api.get("/people").json()["total"] == 0
    assert bob_api.get(f"/people/{person.pk}").status_code == 404
    assert bob_api.get(f"/people/{person.pk}/relationships").status_code == 404
    groups = {g["key"]: g["results"] for g in bob_api.get("/search", q="quen").json()["groups"]}
    assert groups["people"] == []


def test_team_record_is_shared_within_the_team_only(alice, carol_api, bob_api):
    person = person_create(actor=alice, first_name="Teamy", visibility="team")
    assert carol_api.get(f"/people/{person.pk}").status_code == 200
    assert bob_api.get(f"/people/{person.pk}").status_code == 404
