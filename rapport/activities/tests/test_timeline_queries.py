"""A record's page loads its timeline with a fixed number of queries, whatever the activities
show (calls, tasks, deals, people): the timeline reads only TIMELINE_COLUMNS, and anything
the template touched beyond them would cost one query per entry."""

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
