"""Web screens for activities: list filters, logging each kind, detail, edit, tasks."""

import pytest

from conftest import login
from rapport.activities.actions import activity_log, activity_update
from rapport.activities.models import Activity
from rapport.people.actions import person_create
from rapport.sales.actions import deal_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(alice):
    return person_create(actor=alice, first_name="Ann", last_name="Lee")


def test_new_form_prefills_kind_and_person_and_toggles_fields(alice_client, person):
    response = alice_client.get(f"/activities/new/?kind=call&person={person.pk}")
    html = response.content.decode()
    assert response.context["nav"] == "activities"
    assert "data-toggle-kind" in html and 'data-kinds="call"' in html and 'data-kinds="task"' in html
    assert f'value="Ann Lee (#{person.pk})"' in html
    assert '<option value="call" selected>' in html


def test_new_form_does_not_prefill_someone_hidden(alice, bob_client):
    hidden = person_create(actor=alice, first_name="Hidden", visibility="private")
    html = bob_client.get(f"/activities/new/?person={hidden.pk}").content.decode()
    assert "Hidden" not in html


def test_log_task_with_due_date_and_mark_it_done(alice, alice_client, person):
    response = alice_client.post(
        "/activities/new/",
        {
            "kind": "task",
            "subject": "Send proposal",
            "due_at": "2030-01-15T09:30",
            "person": f"#{person.pk}",
            "visibility": "everyone",
        },
    )
    task = Activity.objects.get()
    assert response["Location"] == f"/activities/{task.pk}/"
    assert task.assignee == alice and task.due_at.year == 2030 and task.done_at is None
    open_list = alice_client.get("/activities/?open=1")
    assert [a.pk for a in open_list.context["page"].items] == [task.pk]
    alice_client.post(f"/activities/{task.pk}/done/", {"done": "1"})
    task.refresh_from_db()
    assert task.done_at is not None
    assert alice_client.get("/activities/?open=1").context["page"].items == []


def test_task_without_title_and_bad_date_are_inline_errors(alice_client, person):
    response = alice_client.post(
        "/activities/new/",
        {"kind": "task", "due_at": "next tuesday-ish", "person": f"#{person.pk}", "visibility": "everyone"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid date/time" in html
    response = alice_client.post(
        "/activities/new/", {"kind": "task", "person": f"#{person.pk}", "visibility": "everyone"}
    )
    assert response.status_code == 400 and "A task needs a title" in response.content.decode()
    assert not Activity.objects.exists()


def test_activity_needs_something_to_hang_off(alice_client):
    response = alice_client.post(
        "/activities/new/", {"kind": "note", "body": "floating", "visibility": "everyone"}
    )
    assert response.status_code == 400
    assert "Log an activity on a person" in response.content.decode()


def test_failed_inline_log_keeps_text_and_next(alice_client, person):
    response = alice_client.post(
        "/activities/new/",
        {
            "kind": "call",
            "subject": "s" * 301,
            "body": "my notes",
            "person": f"#{person.pk}",
            "visibility": "everyone",
            "next": f"/people/{person.pk}/",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "my notes" in html and f'name="next" value="/people/{person.pk}/"' in html


def test_offsite_next_is_ignored(alice_client, person):
    response = alice_client.post(
        "/activities/new/",
        {
            "kind": "note",
            "body": "x",
            "person": f"#{person.pk}",
            "visibility": "everyone",
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and "evil" not in response["Location"]


def test_list_filters_by_kind_and_mine(alice, carol, alice_client, person):
    activity_log(actor=alice, kind="note", person=person, body="mine")
    activity_log(actor=carol, kind="call", person=person, subject="carols call")
    assert [a.body for a in alice_client.get("/activities/?mine=1").context["page"].items] == ["mine"]
    assert [a.subject for a in alice_client.get("/activities/?kind=call").context["page"].items] == [
        "carols call"
    ]


def test_private_activity_is_invisible_to_bob(alice, bob_client, person):
    secret = activity_log(actor=alice, kind="note", person=person, body="secret", visibility="private")
    assert bob_client.get(f"/activities/{secret.pk}/").status_code == 404
    assert "secret" not in bob_client.get("/activities/").content.decode()
    assert bob_client.post(f"/activities/{secret.pk}/edit/", {"body": "pwned"}).status_code == 404
    secret.refresh_from_db()
    assert secret.body == "secret"


def test_public_activity_on_private_deal_does_not_reveal_the_deal_name(alice, bob_client):
    deal = deal_create(actor=alice, name="Hush hush", visibility="private")
    activity_log(actor=alice, kind="note", deal=deal, body="public note")
    html = bob_client.get("/activities/").content.decode()
    assert "public note" in html and "Hush hush" not in html


def test_edit_activity_and_stale_edit_conflict(alice, carol, alice_client, person):
    note = activity_log(actor=alice, kind="note", person=person, body="first")
    activity_update(actor=carol, activity=note, data={"body": "carol's"}, expected_version=1)
    response = alice_client.post(
        f"/activities/{note.pk}/edit/", {"body": "alice's", "visibility": "everyone", "version": 1}
    )
    assert response.status_code == 409
    assert "alice&#x27;s" in response.content.decode()
    note.refresh_from_db()
    assert note.body == "carol's"
    response = alice_client.post(
        f"/activities/{note.pk}/edit/", {"body": "alice's", "visibility": "everyone", "version": 2}
    )
    assert response.status_code == 302
    note.refresh_from_db()
    assert note.body == "alice's"


def test_reader_cannot_log_or_complete(alice, reader, person):
    task = activity_log(actor=alice, kind="task", subject="t", person=person)
    client = login(reader)
    assert client.get("/activities/new/").status_code == 403
    assert client.post(f"/activities/{task.pk}/done/").status_code == 403
    assert "Mark done" not in client.get(f"/activities/{task.pk}/").content.decode()
    task.refresh_from_db()
    assert task.done_at is None


def test_detail_escapes_body_and_shows_call_fields(alice, alice_client, person):
    call = activity_log(
        actor=alice,
        kind="call",
        person=person,
        subject="<b>hi</b>",
        body="<script>x()</script>",
        call_direction="outbound",
        call_duration_s=125,
        call_outcome="voicemail",
    )
    html = alice_client.get(f"/activities/{call.pk}/").content.decode()
    assert "<script>x()" not in html and "&lt;script&gt;" in html and "<b>hi</b>" not in html
    assert "Outbound" in html and "125 s" in html and "Left voicemail" in html


def test_delete_activity(alice, alice_client, person):
    note = activity_log(actor=alice, kind="note", person=person, body="bye")
    assert alice_client.get(f"/activities/{note.pk}/delete/").status_code == 200
    alice_client.post(f"/activities/{note.pk}/delete/")
    assert not Activity.objects.filter(pk=note.pk).exists()


def test_activity_list_rows_escape_values_and_hide_private_names(alice, bob, bob_client):
    from rapport.people.actions import person_create

    secret = person_create(actor=alice, first_name="Secret", last_name="Client", visibility="private")
    public = person_create(actor=alice, first_name="Open", last_name="<b>Person</b>", visibility="everyone")
    activity_log(actor=alice, kind="note", subject="<script>x</script>", person=secret, visibility="everyone")
    activity_log(actor=alice, kind="call", subject="", body="b" * 300, person=public, visibility="everyone")
    html = bob_client.get("/activities/").content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "Secret" not in html
    assert "Open &lt;b&gt;Person&lt;/b&gt;" in html
    assert "b" * 99 + "…" in html and "b" * 101 not in html  # the body stands in for a subject, cut at 100
