from rapport.activities.actions import activity_log
from rapport.activities.models import Activity
from rapport.people.actions import person_create


def test_log_a_call_with_its_fields(alice_api, alice):
    person = person_create(actor=alice, first_name="Caller")
    r = alice_api.post(
        "/activities",
        {
            "kind": "call",
            "subject": "Intro call",
            "person": person.pk,
            "call_direction": "outbound",
            "call_duration_s": 300,
            "call_outcome": "connected",
            "phone_number": "+44 20 7946 0958",
            "occurred_at": "2030-05-01T10:00:00+02:00",
        },
    )
    assert r.status_code == 201, r.content
    call = r.json()
    assert (call["call_direction"], call["call_duration_s"], call["call_outcome"]) == (
        "outbound",
        300,
        "connected",
    )
    assert call["person"] == {"id": person.pk, "name": "Caller"}
    assert call["occurred_at"].startswith("2030-05-01T08:00:00")


def test_bad_call_fields_are_400(alice_api, alice):
    person = person_create(actor=alice, first_name="Caller")
    r = alice_api.post("/activities", {"kind": "call", "person": person.pk, "call_outcome": "exploded"})
    assert r.status_code == 400
    assert "call_outcome" in r.json()["errors"]
    r = alice_api.post("/activities", {"kind": "call", "person": person.pk, "call_duration_s": 999999})
    assert r.status_code == 422
    assert alice_api.post("/activities", {"kind": "smoke", "person": person.pk}).status_code == 400
    assert alice_api.post("/activities", {"kind": "note", "body": "orphan"}).status_code == 400
    assert not Activity.objects.exists()


def test_every_kind_can_be_logged(alice_api, alice):
    person = person_create(actor=alice, first_name="All")
    bodies = [
        {"kind": "note", "body": "n"},
        {
            "kind": "meeting",
            "subject": "m",
            "occurred_at": "2030-01-01T10:00:00Z",
            "ends_at": "2030-01-01T11:00:00Z",
            "location": "HQ",
        },
        {"kind": "task", "subject": "t", "due_at": "2030-01-02T09:00:00Z"},
        {"kind": "email", "subject": "e", "email_from": "a@x.org", "email_to": "b@x.org"},
    ]
    for body in bodies:
        r = alice_api.post("/activities", {**body, "person": person.pk})
        assert r.status_code == 201, (body, r.content)
    bad = alice_api.post(
        "/activities",
        {
            "kind": "meeting",
            "person": person.pk,
            "occurred_at": "2030-01-01T10:00:00Z",
            "ends_at": "2030-01-01T09:00:00Z",
        },
    )
    assert bad.status_code == 400
    assert Activity.objects.count() == 4


def test_task_complete_and_reopen(alice_api, alice):
    person = person_create(actor=alice, first_name="T")
    task = alice_api.post("/activities", {"kind": "task", "subject": "Call back", "person": person.pk}).json()
    assert task["assignee"]["username"] == "alice"
    assert [t["id"] for t in alice_api.get("/tasks").json()] == [task["id"]]
    r = alice_api.post(f"/activities/{task['id']}/complete", {})
    assert r.status_code == 200
    assert r.json()["done_at"] is not None
    assert alice_api.get("/tasks").json() == []
    assert alice_api.post(f"/activities/{task['id']}/complete", {"done": False}).json()["done_at"] is None
    note = activity_log(actor=alice, kind="note", body="x", person=person)
    assert alice_api.post(f"/activities/{note.pk}/complete", {}).status_code == 400


def test_timeline_filters_paging_update_and_delete(alice_api, alice):
    a = person_create(actor=alice, first_name="A")
    b = person_create(actor=alice, first_name="B")
    for i in range(5):
        activity_log(actor=alice, kind="note", body=f"a{i}", person=a)
    activity_log(actor=alice, kind="call", person=b)
    first = alice_api.get("/activities", person=a.pk, limit=3).json()
    assert first["total"] == 5
    second = alice_api.get("/activities", person=a.pk, limit=3, cursor=first["next_cursor"]).json()
    ids = [x["id"] for x in first["items"] + second["items"]]
    assert len(set(ids)) == 5
    assert second["next_cursor"] is None
    assert alice_api.get("/activities", kind="call").json()["total"] == 1
    assert alice_api.get("/activities", kind="bogus").status_code == 400
    r = alice_api.patch(f"/activities/{ids[0]}", {"body": "edited"})
    assert r.status_code == 200
    assert r.json()["body"] == "edited"
    assert alice_api.patch(f"/activities/{ids[0]}", {"kind": "task"}).status_code == 422
    assert alice_api.delete(f"/activities/{ids[0]}").status_code == 204
    assert not Activity.objects.filter(pk=ids[0]).exists()


def test_bob_cannot_touch_alices_private_activity(alice, bob_api):
    person = person_create(actor=alice, first_name="P")
    act = activity_log(actor=alice, kind="note", body="secret", person=person, visibility="private")
    assert bob_api.get(f"/activities/{act.pk}").status_code == 404
    assert bob_api.get("/activities").json()["total"] == 0
    assert bob_api.patch(f"/activities/{act.pk}", {"body": "x"}).status_code == 404
    assert bob_api.delete(f"/activities/{act.pk}").status_code == 404
    act.refresh_from_db()
    assert act.body == "secret"
