"""The inbox page's one round trip (selectors.inbox_screen): the same rows and cursors as
inbox_rows, the same visible customers as people.selectors.visible_person_ids and the same
extras as inbox_extras, for every role, view, status and filter."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import login
from rapport.conversations import selectors
from rapport.conversations.tests.test_inbox_rows import FILTER_SETS, ROLES, _user, world  # noqa: F401
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.people.models import Person
from rapport.people.selectors import visible_person_ids


@pytest.fixture
def private_world(world, north, alice, bob, carol):  # noqa: F811 - the imported fixture
    """The world's customers under every kind of access: one private to bob, one shared with
    North's team only, one everyone's, one merged away."""
    people = list(Person.objects.order_by("id"))
    assert len(people) == 4
    Person.objects.filter(pk=people[0].pk).update(visibility=Visibility.PRIVATE, owner=bob)
    Person.objects.filter(pk=people[1].pk).update(visibility=Visibility.TEAM, owner=carol, team=north)
    Person.objects.filter(pk=people[2].pk).update(visibility=Visibility.EVERYONE)
    Person.objects.filter(pk=people[3].pk).update(merged_into=people[2])
    return world


def _screens(user, filters, limit):
    out, cursor, seen = [], None, 0
    while True:
        screen = selectors.inbox_screen(user=user, filters=filters, cursor=cursor, agents=True, limit=limit)
        out.append(screen)
        cursor = screen.page.next_cursor
        seen += 1
        if not cursor or seen > 100:
            return out


@pytest.mark.parametrize("username", ROLES)
def test_screen_is_inbox_rows_visible_person_ids_and_extras(private_world, north, username):
    user = _user(username)
    refs = {"nmail": 0, "nchat": 1, "smail": 2}
    extras = selectors.inbox_extras(user, agents=True)
    hidden = shown = 0
    for view, status, extra in itertools.product(selectors.VIEWS, ["open", "any", "closed"], FILTER_SETS):
        kwargs = dict(extra)
        if "channel" in kwargs:
            kwargs["channel"] = private_world["channels"][refs[kwargs["channel"]]].pk
        if "team" in kwargs:
            kwargs["team"] = north.pk
        if "assignee" in kwargs:
            kwargs["assignee"] = _user("alice").pk
        filters = selectors.InboxFilters(view=view, status=status, **kwargs)
        screens = _screens(user, filters, 7)
        pages = [(s.page.items, s.page.next_cursor) for s in screens]
        cursor, expected = None, []
        for _ in screens:
            page = selectors.inbox_rows(user=user, filters=filters, cursor=cursor, limit=7)
            expected.append((page.items, page.next_cursor))
            cursor = page.next_cursor
        assert pages == expected, (view, status, extra)
        for s in screens:
            ids = {r.person_id for r in s.page.items if r.person_id}
            assert s.visible_people == visible_person_ids(user, ids), (view, status, extra)
            assert s.extras == extras
            hidden += len(ids - s.visible_people)
            shown += len(s.visible_people)
    if username in ("alice", "carol", "admin"):
        assert shown > 0
    if username in ("alice", "bob", "carol"):
        assert hidden > 0  # someone else's private customer, a team's, a merged one


def test_screen_without_agents_and_for_a_user_without_teams(private_world):
    loner = _user("loner")
    for view in selectors.VIEWS:
        screen = selectors.inbox_screen(user=loner, filters=selectors.InboxFilters(view=view), agents=False)
        assert screen.extras == selectors.inbox_extras(loner, agents=False)
        assert (
            screen.page.items
            == selectors.inbox_rows(user=loner, filters=selectors.InboxFilters(view=view)).items
        )
    admin = _user("admin")
    assert (
        selectors.inbox_screen(user=admin, filters=selectors.InboxFilters(), agents=False).extras.agents == []
    )


@pytest.mark.parametrize("bad", [{"view": "nope"}, {"status": "weird"}])
def test_screen_raises_what_inbox_rows_raises(private_world, bad):
    alice = _user("alice")
    with pytest.raises(ActionError) as screen:
        selectors.inbox_screen(user=alice, filters=selectors.InboxFilters(**bad), agents=True)
    with pytest.raises(ActionError) as rows:
        selectors.inbox_rows(user=alice, filters=selectors.InboxFilters(**bad))
    assert screen.value.message == rows.value.message


def test_the_page_names_only_the_customers_the_agent_may_see(private_world):
    for username in ("alice", "bob", "admin"):
        user = _user(username)
        html = login(user).get("/inbox/?view=all&status=any").content.decode()
        items = selectors.inbox_rows(
            user=user, filters=selectors.InboxFilters(view="all", status="any")
        ).items
        visible = visible_person_ids(user, {r.person_id for r in items if r.person_id})
        assert ("A person you cannot see" in html) == any(
            r.person_id and r.person_id not in visible for r in items
        ), username
    # Ann Lee is private to bob; a merged-away customer is not shown even to an admin
    pages = {u: login(_user(u)).get("/inbox/?view=all&status=any").content.decode() for u in ("alice", "bob")}
    assert "Ann Lee" in pages["bob"] and "Ann Lee" not in pages["alice"]


def test_the_list_page_reads_in_one_round_trip_after_the_login(private_world):
    client = login(_user("alice"))
    client.get("/inbox/")  # prepares the statements on PostgreSQL, and the session names its user
    # On PostgreSQL the session with its user, then the rows with their customers' visibility
    # and the extras: two round trips. SQLite (in-process) runs the statements one by one.
    pg = connection.vendor == "postgresql"
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/inbox/?view=all").status_code == 200
    assert len(queries) == (2 if pg else 4)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/inbox/?view=nope").status_code == 400
    assert len(queries) == (2 if pg else 3)  # the error page still lists the channels and agents
