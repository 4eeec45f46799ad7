"""The inbox lists read in plain SQL (selectors.inbox_rows, agent_choices, channel_choices,
unread_count_sql) against the ORM selectors they replace on the pages: the same rows, order
and cursors for every role, view, status and filter."""

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.channels.models import Channel, ChannelKind
from rapport.conversations import selectors, views
from rapport.conversations.models import Conversation, Notification, Priority, SlaState, Status
from rapport.core.errors import ActionError
from rapport.core.pagination import encode_cursor
from rapport.people.models import Person

ROLES = ["alice", "bob", "carol", "reader", "admin", "loner", "gone"]


@pytest.fixture
def world(north, south, alice, bob, carol, reader, admin):
    """Conversations of both teams and of none, assigned to everyone and to no one, in every
    status and SLA state, some sharing a time (so ids break ties at page ends), with subjects
    holding LIKE's wildcards, on two channels each side."""
    loner = User.objects.create_user(username="loner", password="x", role=Role.SALES, first_name="Lo")
    gone = User.objects.create_user(username="gone", password="x", role=Role.SALES, is_active=False)
    gone.teams.set([north])
    User.objects.create_user(username="rapport-bot", password="x", role=Role.SALES)
    nmail = Channel.objects.create(kind=ChannelKind.EMAIL, name="Mail", team=north)
    nchat = Channel.objects.create(kind=ChannelKind.CHAT, name="Chat", team=north)
    smail = Channel.objects.create(kind=ChannelKind.EMAIL, name="Mail", team=south)
    Channel.objects.create(kind=ChannelKind.SMS, name="Loose")
    people = [
        Person.objects.create(first_name=f, last_name=last, owner=admin)
        for f, last in [("Ann", "Lee"), ("", ""), ("Bo", ""), ("", "Kim")]
    ]
    now = timezone.now().replace(microsecond=0)
    subjects = ["Refund 50% off", "under_score", "Plain", "", "Ünïcode refund", "back\\slash", "<b>&</b>"]
    assignees = [None, alice, bob, carol, reader, admin, loner]
    teams = [north, south, None]
    statuses = list(Status.values)
    slas = list(SlaState.values)
    convs = []
    for i in range(60):
        conv = Conversation.objects.create(
            subject=subjects[i % len(subjects)],
            status=statuses[i % len(statuses)],
            priority=list(Priority.values)[i % 4],
            assignee=assignees[(i // 2) % len(assignees)],
            team=teams[i % 3],
            person=people[i % 5] if i % 5 < 4 else None,
            sentiment=["", "negative", "positive"][i % 3],
            sla_state=slas[(i // 3) % len(slas)],
            last_message_at=now - dt.timedelta(minutes=i // 3),
        )
        channels = {0: [nmail], 1: [smail], 2: [nmail, nchat]}[i % 3]
        conv.channels.set(channels)
        convs.append(conv)
    for i in range(5):
        Notification.objects.create(user=alice, kind="x", text="t", read_at=now if i % 2 else None)
    return {"channels": [nmail, nchat, smail], "convs": convs}


def _user(name: str) -> User:
    return User.objects.get(username=name)


def _pages(fn, user, filters, limit):
    out, cursor, seen = [], None, 0
    while True:
        page = fn(user=user, filters=filters, cursor=cursor, limit=limit)
        out.append(([tuple(r) for r in page.items], page.next_cursor))
        cursor = page.next_cursor
        seen += 1
        if not cursor or seen > 100:
            return out


FILTER_SETS = [
    {},
    {"q": "refund"},
    {"q": "%"},
    {"q": "_"},
    {"q": "\\"},
    {"q": "<b>"},
    {"channel": "nmail"},
    {"channel": "smail"},
    {"team": "north"},
    {"assignee": "alice"},
    {"channel": "nchat", "q": "plain"},
]


@pytest.mark.parametrize("username", ROLES)
def test_inbox_rows_are_the_orm_pages_for_every_view_status_and_filter(world, north, username):
    user = _user(username)
    refs = {
        "nmail": world["channels"][0].pk,
        "nchat": world["channels"][1].pk,
        "smail": world["channels"][2].pk,
    }
    checked = 0
    for view, status, extra in itertools.product(
        selectors.VIEWS, ["open", "any", "", "waiting", "closed"], FILTER_SETS
    ):
        kwargs = dict(extra)
        if "channel" in kwargs:
            kwargs["channel"] = refs[kwargs["channel"]]
        if "team" in kwargs:
            kwargs["team"] = north.pk
        if "assignee" in kwargs:
            kwargs["assignee"] = _user("alice").pk
        filters = selectors.InboxFilters(view=view, status=status, **kwargs)
        raw = _pages(selectors.inbox_rows, user, filters, 7)
        orm = _pages(selectors.inbox_list, user, filters, 7)
        assert raw == orm, (view, status, extra)
        checked += sum(len(rows) for rows, _ in raw)
    if username in ("alice", "bob", "carol", "admin"):
        assert checked > 500


def test_rows_carry_aware_times_and_the_orm_types(world, alice):
    filters = selectors.InboxFilters(view="all", status="any")
    raw = selectors.inbox_rows(user=alice, filters=filters).items
    orm = selectors.inbox_list(user=alice, filters=filters).items
    assert raw and [r._asdict() for r in raw] == [r._asdict() for r in orm]
    assert all(r.last_message_at.tzinfo is not None for r in raw)


@pytest.mark.parametrize(
    "bad",
    [
        {"view": "nope"},
        {"status": "weird"},
    ],
)
def test_bad_filters_are_the_same_errors(world, alice, bad):
    filters = selectors.InboxFilters(**bad)
    with pytest.raises(ActionError) as raw:
        selectors.inbox_rows(user=alice, filters=filters)
    with pytest.raises(ActionError) as orm:
        selectors.inbox_list(user=alice, filters=filters)
    assert raw.value.message == orm.value.message


@pytest.mark.parametrize(
    "cursor",
    ["%%%", encode_cursor([1]), encode_cursor(["not a date", 3]), encode_cursor([timezone.now(), "x"])],
)
def test_a_bad_cursor_is_an_error_not_a_crash(world, alice, loner_cursor_user, cursor):
    for user in (alice, loner_cursor_user):
        for view in ("all", "teams"):
            with pytest.raises(ActionError):
                selectors.inbox_rows(user=user, filters=selectors.InboxFilters(view=view), cursor=cursor)


@pytest.fixture
def loner_cursor_user(world):
    return _user("loner")


@pytest.mark.parametrize("username", ROLES)
def test_agents_channels_and_unread_are_the_orm_ones(world, username):
    user = _user(username)
    assert selectors.agent_choices(user) == [(a.pk, str(a)) for a in views._agents_for(user)]
    orm_channels = Channel.objects.only("pk", "name").order_by("name", "id")
    if not user.is_admin:
        orm_channels = orm_channels.filter(team_id__in=user.team_ids())
    assert selectors.channel_choices(user) == [(c.pk, c.name) for c in orm_channels]
    assert selectors.unread_count_sql(user) == selectors.unread_count(user)
    # the list page reads the three in one statement
    extras = selectors.inbox_extras(user, agents=True)
    assert extras.agents == selectors.agent_choices(user)
    assert extras.channels == selectors.channel_choices(user)
    assert extras.unread == selectors.unread_count(user)
    assert selectors.inbox_extras(user, agents=False).agents == []
    if user.is_admin:  # several rows each: their order is checked too
        assert len(extras.agents) > 1 and len(extras.channels) > 1
    if username == "alice":
        assert selectors.unread_count_sql(user) == 3


def test_the_page_escapes_the_options_it_builds(world, north, admin):
    from conftest import login

    Channel.objects.filter(pk=world["channels"][0].pk).update(name='<i>"Mail"</i>')
    User.objects.filter(username="alice").update(first_name="<Al>", last_name="&")
    page = (
        login(admin)
        .get(f"/inbox/?view=all&channel={world['channels'][0].pk}&status=waiting")
        .content.decode()
    )
    assert (
        f'<option value="{world["channels"][0].pk}" selected>&lt;i&gt;&quot;Mail&quot;&lt;/i&gt;</option>'
        in page
    )
    assert '<option value="waiting" selected>Waiting on customer</option>' in page
    assert f'<option value="{_user("alice").pk}">&lt;Al&gt; &amp;</option>' in page
    assert '<a href="?view=all" aria-current="page">All</a>' in page
    assert "<i>" not in page


def test_the_page_links_where_the_url_names_point(world, admin):
    """The inbox templates write their own paths (a reverse() costs as much as a row)."""
    from django.urls import reverse

    from conftest import login

    page = login(admin).get("/inbox/?view=all").content.decode()
    for name in ("notifications", "canned-list", "inbox-bulk"):
        assert f'"{reverse(name)}"' in page
    conv = world["convs"][0]
    page = login(admin).get(f"/inbox/{conv.pk}/").content.decode()
    for name in ("conversation-messages", "conversation-reply", "conversation-canned", "conversation-assign",
                 "conversation-status", "conversation-priority", "conversation-merge",
                 "conversation-call"):  # fmt: skip
        assert f'"{reverse(name, args=[conv.pk])}"' in page, name
