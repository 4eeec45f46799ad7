"""A record's page loads its timeline with a fixed number of queries, whatever the activities
show (calls, tasks, deals, people): the timeline (activities.selectors.timeline_page) reads
only the columns it shows, and anything the template touched beyond them would cost one
query per entry. And timeline_page selects what the ORM's timeline() selects."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rapport.activities.actions import activity_log
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create

pytestmark = pytest.mark.django_db


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_timeline_query_count_does_not_grow_with_entries(alice, carol, alice_client):
    org = organisation_create(actor=alice, name="Acme")
    ann = person_create(actor=alice, first_name="Ann", last_name="Lee", organisation=org)
    deal = deal_create(actor=alice, name="Acme renewal", organisation=org)
    activity_log(actor=alice, kind="note", subject="First", person=ann)
    pages = [f"/people/{ann.pk}/", f"/organisations/{org.pk}/", f"/deals/{deal.pk}/"]
    for url in pages:  # the first view also fills the cached blank forms
        alice_client.get(url)
    before = {url: _queries(alice_client, url) for url in pages}
    due = timezone.now() + dt.timedelta(days=2)
    for i in range(6):
        activity_log(
            actor=alice,
            kind="call",
            subject=f"Call {i}",
            person=ann,
            deal=deal,
            organisation=org,
            call_direction="outbound",
            call_duration_s=60,
            call_outcome="connected",
        )
        activity_log(
            actor=carol,
            kind="task",
            subject=f"Task {i}",
            person=ann,
            deal=deal,
            organisation=org,
            due_at=due,
            assignee=alice,
        )
    for url in pages:
        html = alice_client.get(url).content.decode()
        assert "Call 5" in html and "Task 5" in html and "Carol" in html
        assert _queries(alice_client, url) == before[url], url


def test_timeline_page_matches_the_orm_timeline(alice, bob, carol, reader, admin):
    from rapport.activities.selectors import timeline, timeline_page

    org = organisation_create(actor=alice, name="Acme", visibility="private")
    ann = person_create(
        actor=alice, first_name="Ann", last_name="Lee", organisation=org, visibility="everyone"
    )
    deal = deal_create(actor=bob, name="Bob's deal", organisation=org, visibility="private")
    when = timezone.now()
    for i in range(9):
        activity_log(
            actor=[alice, bob, carol][i % 3],
            kind=["note", "call", "task"][i % 3],
            subject=f"Entry {i}",
            person=ann,
            deal=deal if i % 2 else None,
            organisation=org,
            occurred_at=when - dt.timedelta(hours=i // 2),  # ties on occurred_at: id decides
            visibility=["everyone", "team", "private"][i % 3],
            assignee=alice if i % 3 == 2 else None,
            due_at=when if i % 3 == 2 else None,
        )
    for user in (alice, bob, carol, reader, admin):
        for target in ({"person_id": ann.pk}, {"organisation_id": org.pk}, {"deal_id": deal.pk}):
            cursor_orm = cursor_sql = None
            while True:
                orm = timeline(user=user, cursor=cursor_orm, limit=2, **target)
                raw = timeline_page(user=user, cursor=cursor_sql, limit=2, **target)
                assert [a.pk for a in raw.items] == [a.pk for a in orm.items], (user, target)
                for r, o in zip(raw.items, orm.items, strict=True):
                    assert (r.kind, r.subject, r.occurred_at, r.due_at, r.done_at) == (
                        o.kind, o.subject, o.occurred_at, o.due_at, o.done_at,
                    )  # fmt: skip
                    assert (str(r.owner), str(r.person), str(r.deal or ""), str(r.assignee or "")) == (
                        str(o.owner), str(o.person), str(o.deal or ""), str(o.assignee or ""),
                    )  # fmt: skip
                    assert (r.deal.visibility if r.deal else None) == (o.deal.visibility if o.deal else None)
                assert raw.next_cursor == orm.next_cursor
                if not orm.next_cursor:
                    break
                cursor_orm, cursor_sql = orm.next_cursor, raw.next_cursor


@pytest.mark.parametrize("filters", [{}, {"kind": "call"}, {"open_tasks": True}, {"mine": True}], ids=str)
def test_activity_list_rows_match_the_orm(alice, bob, carol, reader, admin, filters):
    from rapport.activities.models import Activity
    from rapport.activities.selectors import activities_visible, activity_rows
    from rapport.core.pagination import keyset_page

    ann = person_create(actor=alice, first_name="Ann", last_name="Lee", visibility="everyone")
    when = timezone.now()
    for i in range(10):
        activity_log(
            actor=[alice, bob, carol][i % 3],
            kind=["note", "call", "task"][i % 3],
            subject=f"Entry {i}",
            person=ann,
            occurred_at=when - dt.timedelta(hours=i // 2),
            visibility=["everyone", "team", "private"][i % 3],
            assignee=alice if i % 3 == 2 else None,
        )
    first_task = Activity.objects.filter(kind="task").order_by("id").first()
    Activity.objects.filter(pk=first_task.pk).update(done_at=when)  # one task done
    for user in (alice, bob, carol, reader, admin):
        qs = activities_visible(user)
        if filters.get("kind"):
            qs = qs.filter(kind=filters["kind"])
        if filters.get("mine"):
            qs = qs.filter(owner=user)
        if filters.get("open_tasks"):
            qs = qs.filter(kind="task", done_at__isnull=True)
        cursor_orm = cursor_sql = None
        while True:
            orm = keyset_page(qs, ["-occurred_at", "-id"], cursor_orm, 3)
            raw = activity_rows(
                user=user,
                kind=filters.get("kind", ""),
                owner_id=user.pk if filters.get("mine") else None,
                open_tasks=filters.get("open_tasks", False),
                cursor=cursor_sql,
                limit=3,
            )
            assert [a.pk for a in raw.items] == [a.pk for a in orm.items], (user, filters)
            assert raw.next_cursor == orm.next_cursor
            if not orm.next_cursor:
                break
            cursor_orm, cursor_sql = orm.next_cursor, raw.next_cursor
