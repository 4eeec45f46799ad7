"""The inbox list and conversation page as rendered for speed: the rows built in Python, the
lean list query, the channel filter, the deals panel and the notice write."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.db.models import Q
from django.template.defaultfilters import date as date_filter
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import login
from rapport.accounts.models import User
from rapport.bench.seed import seed
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.models import Channel, ChannelKind
from rapport.channels.testing import webhook_channel
from rapport.conversations import selectors
from rapport.conversations.ingest import ingest
from rapport.conversations.models import Conversation, Notification, SlaState
from rapport.conversations.views import _deals_of
from rapport.core import reads
from rapport.people.models import Person
from rapport.sales.selectors import deals_visible


@pytest.fixture
def channel(north):
    return webhook_channel(north)


def _conv(channel, ext: str, text: str = "Help", email: str = "jane@example.org") -> Conversation:
    message = CanonicalMessage("webhook", ext, Author("email", email, "Jane Doe"), text=text)
    return ingest(channel, message).message.conversation


def test_rows_escape_every_value_and_match_the_template_filters(channel, alice, alice_client):
    conv = _conv(channel, "m1")
    when = dt.datetime(2026, 3, 2, 9, 5, 7, tzinfo=dt.UTC)
    Conversation.objects.filter(pk=conv.pk).update(
        subject='<script>alert(1)</script> "quoted" & ' + "x" * 100,
        sentiment="negative",
        sla_state=SlaState.AT_RISK,
        assignee=alice,
        last_message_at=when,
    )
    page = alice_client.get("/inbox/?view=all").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; " in page
    assert '<tr class="sentiment-negative">' in page
    assert f'<a href="/inbox/{conv.pk}/" dir="auto">' in page
    assert "xxx…</a>" in page  # truncatechars:90
    assert '<span class="badge sla-at_risk">At risk</span>' in page
    assert '<span class="badge status-new">New</span>' in page
    assert f"<td>{alice}</td>" in page
    assert '<td dir="auto">Jane Doe</td>' in page
    with timezone.override("Europe/Paris"):
        page = alice_client.get("/inbox/?view=all").content.decode()
        local = timezone.localtime(when)
        assert f'<time datetime="{date_filter(local, "c")}">{date_filter(local, "Y-m-d H:i")}</time>' in page
    assert f'name="ids" value="{conv.pk}"' in page


def test_rows_for_a_reader_have_no_checkbox_and_say_unassigned(channel, reader):
    conv = _conv(channel, "m1")
    Conversation.objects.filter(pk=conv.pk).update(person=None, sla_state=SlaState.NONE)
    page = login(reader).get("/inbox/?view=all").content.decode()
    assert 'name="ids"' not in page
    assert "<td>Unassigned</td>" in page
    assert '<td dir="auto">—</td>' in page
    assert '<span class="muted">No SLA</span>' in page


def test_channel_filter_lists_each_conversation_that_used_the_channel_once(north, channel, alice_client):
    other = Channel.objects.create(kind=ChannelKind.EMAIL, name="Mail", team=north)
    both = _conv(channel, "m1", text="Used both")
    both.channels.add(other)
    only_first = _conv(channel, "m2", text="Only webhook", email="ann@example.org")
    first = alice_client.get(f"/inbox/?view=all&channel={channel.pk}").content.decode()
    second = alice_client.get(f"/inbox/?view=all&channel={other.pk}").content.decode()
    assert first.count(f'href="/inbox/{both.pk}/"') == 1
    assert f'href="/inbox/{only_first.pk}/"' in first
    assert f'href="/inbox/{both.pk}/"' in second
    assert f'href="/inbox/{only_first.pk}/"' not in second


def test_list_pages_through_every_view_with_the_lean_query(channel, alice, alice_client):
    convs = [_conv(channel, f"m{i}", email=f"p{i}@example.org") for i in range(7)]
    Conversation.objects.filter(pk__in=[c.pk for c in convs[:4]]).update(assignee=alice)
    Conversation.objects.filter(pk=convs[0].pk).update(sla_state=SlaState.BREACHED)
    seen: list[str] = []
    url = "/inbox/?view=mine&status=open"
    while url:
        response = alice_client.get(url.replace("&amp;", "&"))
        assert response.status_code == 200
        html = response.content.decode()
        seen += [c.subject for c in convs if f'href="/inbox/{c.pk}/"' in html]
        url = ""
        if 'class="pager"' in html:
            url = "/inbox/" + html.split('class="pager"')[1].split('href="')[1].split('"')[0]
    assert len(seen) == 4
    for view, expected in (("unassigned", 3), ("teams", 7), ("all", 7), ("sla", 1)):
        html = alice_client.get(f"/inbox/?view={view}").content.decode()
        assert sum(f'href="/inbox/{c.pk}/"' in html for c in convs) == expected, view


def test_conversation_page_writes_nothing_when_no_notice_is_unread(channel, alice, alice_client):
    conv = _conv(channel, "m1")
    with CaptureQueriesContext(connection) as queries:
        assert alice_client.get(f"/inbox/{conv.pk}/").status_code == 200
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    notice = Notification.objects.create(user=alice, conversation=conv, kind="assigned", text="Yours")
    alice_client.get(f"/inbox/{conv.pk}/")
    notice.refresh_from_db()
    assert notice.read_at is not None


@pytest.mark.parametrize("username", ["maria", "sam", "admin"])
def test_deals_panel_is_the_ten_newest_visible_deals_of_the_person_or_their_organisation(db, username):
    seed(people=80, orgs=4, deals=60, activities=0, seed=7, users=True, today=dt.date(2026, 3, 2))
    user = User.objects.get(username=username)
    checked = 0
    for person in Person.objects.order_by("id"):
        dq = Q(participants__person=person)
        if person.organisation_id:
            dq |= Q(organisation_id=person.organisation_id)
        expected = list(deals_visible(user).filter(dq).distinct().order_by("-id")[:10])
        assert _deals_of(user, person) == expected
        checked += bool(expected)
    assert checked > 10


def test_pages_continue_exactly_after_the_cursor_even_when_times_tie(channel, alice):

    convs = [_conv(channel, f"m{i}", email=f"p{i}@example.org") for i in range(9)]
    same = timezone.now().replace(microsecond=0)
    # Three pairs share a time, so the id decides between them at a page boundary.
    for k, conv in enumerate(convs):
        Conversation.objects.filter(pk=conv.pk).update(last_message_at=same - dt.timedelta(minutes=k // 2))
    for view in ("all", "teams", "unassigned"):
        filters = selectors.InboxFilters(view=view, status="any")
        seen, cursor = [], None
        while True:
            page = selectors.inbox_list(user=alice, filters=filters, cursor=cursor, limit=2)
            seen += [c.id for c in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
        expected = list(
            Conversation.objects.filter(pk__in=[c.pk for c in convs])
            .order_by("-last_message_at", "-id")
            .values_list("pk", flat=True)
        )
        assert seen == expected, view


@pytest.mark.parametrize(("first", "last"), [("", ""), ("Ann", ""), ("", "Lee"), (" Ann ", "Lee")])
def test_rows_name_people_and_agents_as_their_str_does(channel, alice, alice_client, first, last):
    conv = _conv(channel, "m1")
    Person.objects.filter(pk=conv.person_id).update(first_name=first, last_name=last)
    User.objects.filter(pk=alice.pk).update(first_name=first, last_name=last)
    Conversation.objects.filter(pk=conv.pk).update(assignee=alice)
    page = alice_client.get("/inbox/?view=all").content.decode()
    person, agent = Person.objects.get(pk=conv.person_id), User.objects.get(pk=alice.pk)
    assert f'<td dir="auto">{person}</td>' in page
    assert f"<td>{agent}</td>" in page


def test_poll_reads_only_the_conversation_head_and_keeps_the_edit_rules(channel, bob, reader, alice_client):
    conv = _conv(channel, "m1")
    with CaptureQueriesContext(connection) as queries:
        data = alice_client.get(f"/inbox/{conv.pk}/messages.json").json()
    # On PostgreSQL the reads run as prepared statements: "EXECUTE rapport_…(…)" once prepared.
    sqls = [reads.prepared_sql(q["sql"]) for q in queries]
    head = [sql for sql in sqls if re.search(r'FROM "?conversations_conversation"? ', sql)]
    assert len(head) == 1 and "JOIN" not in head[0]
    assert len(queries) <= 5  # session, user, teams, the head, the messages
    assert data["status"] == "new" and "Correct sentiment" in data["html"]
    assert "Correct sentiment" not in login(reader).get(f"/inbox/{conv.pk}/messages.json").json()["html"]
    assert login(bob).get(f"/inbox/{conv.pk}/messages.json").status_code == 404
    Conversation.objects.filter(pk=conv.pk).update(assignee=bob)
    assert "Correct sentiment" in login(bob).get(f"/inbox/{conv.pk}/messages.json").json()["html"]
