"""The conversation page and its poll read in plain SQL (selectors.conversation_page,
conversation_head_row, message_rows) against the ORM reads they replace: the same conversation
and related rows, history, person visibility, identities, deals, other conversations, channels,
merges and unread count for every seeded role; and the history's markup built in Python
against the _messages.html template it replaces."""

import datetime as dt
import re

import pytest
from django.http import Http404
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from conftest import login
from rapport.accounts.models import Team, User
from rapport.bench.seed import seed
from rapport.channels.models import Channel, ChannelKind
from rapport.conversations import actions, selectors
from rapport.conversations.models import Conversation, Delivery, Direction, Message, Notification, Status
from rapport.conversations.templatetags.inbox import csrf_input, message_items
from rapport.conversations.views import _deals_of
from rapport.people.models import Identity, Person
from rapport.people.selectors import people_visible

USERS = ["admin", "maria", "sam", "mona", "sven", "rita", "nobody", "gone"]


@pytest.fixture
def world(db):
    seed(people=60, orgs=4, deals=80, activities=0, seed=11, users=True, today=dt.date(2026, 3, 2))
    north, south = Team.objects.get(name="North"), Team.objects.get(name="South")
    User.objects.create_user(username="nobody", password="x", role="sales", first_name="No", last_name="Body")
    gone = User.objects.create_user(username="gone", password="x", role="sales", is_active=False)
    gone.teams.set([north])
    users = {u.username: u for u in User.objects.all()}
    channels = [
        Channel.objects.create(kind=ChannelKind.EMAIL, name="Mail", team=north),
        Channel.objects.create(kind=ChannelKind.X, name="Alpha X", team=north),
        Channel.objects.create(kind=ChannelKind.SMS, name="Mail", team=south),
        Channel.objects.create(kind=ChannelKind.CHAT, name="Chat", team=None),
    ]
    people = list(Person.objects.order_by("id")[:12])
    # A merged person: their conversations name someone nobody sees any more.
    Person.objects.filter(pk=people[5].pk).update(merged_into=people[6])
    Identity.objects.filter(person=people[0]).delete()
    for kind, value, primary in [
        ("phone", "+442079460958", False),
        ("email", "ann+x@example.org", True),
        ("x", "@<ann>", False),
        ("email", "b@example.org", False),
    ]:
        Identity.objects.create(person=people[0], kind=kind, value=value, is_primary=primary)
    now = timezone.now().replace(microsecond=0)
    assignees = [
        None,
        users["maria"],
        users["sam"],
        users["mona"],
        users["rita"],
        users["admin"],
        users["nobody"],
    ]
    teams = [north, south, None]
    convs = []
    for i in range(36):
        conv = Conversation.objects.create(
            subject=["Refund", "", '<b>Bold & "quoted"</b>', "x" * 80][i % 4],
            status=list(Status.values)[i % 5],
            priority=["low", "normal", "high", "urgent"][i % 4],
            assignee=assignees[i % len(assignees)],
            team=teams[i % 3],
            person=people[i % 12] if i % 13 else None,
            sentiment=["", "negative", "positive"][i % 3],
            sla_state=["none", "ok", "at_risk", "breached"][i % 4],
            sla_first_response_due=now + dt.timedelta(hours=i) if i % 2 else None,
            first_response_at=now if i % 3 == 0 else None,
            reply_channel=channels[i % 4] if i % 5 else None,
            reply_mode="private" if i % 7 == 0 else "",
            reply_to="b@example.org" if i % 6 == 0 else "",
            last_message_at=now - dt.timedelta(minutes=i // 2),
        )
        conv.channels.set(channels[: 1 + i % 4] if i % 4 else [channels[3], channels[1]])
        convs.append(conv)
    Conversation.objects.filter(pk__in=[convs[12].pk, convs[24].pk]).update(merged_into=convs[0])
    for k, conv in enumerate(convs[:10]):
        for j in range(3 + k % 3):
            direction = [Direction.INBOUND, Direction.OUTBOUND, Direction.NOTE][(j + k) % 3]
            Message.objects.create(
                conversation=conv,
                direction=direction,
                channel=None if direction == Direction.NOTE else channels[(j + k) % 4],
                author_kind="hop" if j == 2 and k == 1 else "email",
                author_value=f"c{j}@example.org",
                author_name=["", "Jane <Doe>"][j % 2],
                author_user=[None, users["maria"], users["nobody"]][j % 3] if direction != Direction.INBOUND else None,
                subject=["", "Re: <order>"][k % 2],
                text="Line one\nline <two> & @maria and @nobody." if direction == Direction.NOTE else "Hi\r\nthere <3",
                html="<p>Hello <b>there</b><script>x()</script></p>" if k == 3 and j == 0 else "",
                attachments=[{"filename": "a<b>.png", "content_type": "image/png", "size": 12}] if k == 2 and j == 1 else [],
                delivery_status=(Delivery.FAILED if k % 2 else Delivery.SENT) if direction == Direction.OUTBOUND else Delivery.RECEIVED,
                delivery_error="Refused <by> peer" if direction == Direction.OUTBOUND and k % 2 else "",
                sentiment=["", "negative", "neutral", "positive"][(j + k) % 4],
                received_at=now - dt.timedelta(minutes=60 - j),
            )  # fmt: skip
    for name in ("maria", "sam"):
        for conv in convs[:3]:
            Notification.objects.create(user=users[name], conversation=conv, kind="assigned", text="Yours")
    return {"convs": convs, "people": people}


def _orm_message(m: Message) -> tuple:
    return (
        m.pk, m.conversation_id, m.direction, m.author_kind, m.author_value, m.author_name,
        str(m.author_user) if m.author_user is not None else None,
        m.channel.name if m.channel is not None else None,
        m.subject, m.text, m.html, m.attachments, m.received_at, m.delivery_status, m.delivery_error, m.sentiment,
    )  # fmt: skip


def _expected(user: User, conv_id: int) -> dict | None:
    try:
        conv = selectors.conversation_get(user, conv_id)
    except Http404:
        return None
    person = conv.person
    visible = person is not None and people_visible(user).filter(pk=person.pk).exists()
    return {
        "fields": [getattr(conv, f.attname) for f in Conversation._meta.concrete_fields],
        "names": _names(conv, person),
        "history": [_orm_message(m) for m in selectors.messages_of(conv)],
        "person_visible": visible,
        "identities": [(i.kind, i.value) for i in Identity.objects.filter(person=person)] if visible else [],
        "deals": [(d.pk, d.name, d.amount, d.currency, d.stage.name) for d in _deals_of(user, person)]
        if visible
        else [],
        "others": [
            (o.pk, o.subject, o.status, o.merged_into_id, [ch.kind for ch in o.channels.all()])
            for o in selectors.person_conversations(user, conv.person_id, exclude=conv.pk)
        ]
        if visible
        else [],
        "channels": [ch.name for ch in conv.channels.all()],
        "merged_from": list(conv.merged_from.order_by("id").values_list("pk", flat=True)[:20]),
        "unread": selectors.unread_count(user),
        "can_edit": selectors.can_edit_conversation(user, conv),
    }


def _names(conv: Conversation, person) -> tuple:
    """What the page names from the related rows: the same reads on both sides."""
    return (
        str(conv.assignee) if conv.assignee else None,
        str(conv.team) if conv.team else None,
        (
            str(person),
            person.is_vip,
            person.needs_review,
            str(person.organisation) if person.organisation else None,
        )
        if person
        else None,
        (conv.reply_channel.kind, conv.reply_channel.name) if conv.reply_channel else None,
        conv.merged_into.subject if conv.merged_into_id else None,
    )


def _actual(user: User, conv_id: int, queries) -> dict | None:
    try:
        with queries(3):  # the row, the panels in one statement, the history: whatever they hold
            page = selectors.conversation_page(user, conv_id)
    except Http404:
        return None
    conv, person = page.conversation, page.conversation.person
    with queries(0):  # the related rows the page names are all loaded
        names = _names(conv, person)
    return {
        "fields": [getattr(conv, f.attname) for f in Conversation._meta.concrete_fields],
        "names": names,
        "history": [tuple(m) for m in page.history],
        "person_visible": page.person_visible,
        "identities": [tuple(i) for i in page.identities],
        "deals": [tuple(d) for d in page.deals],
        "others": [tuple(o) for o in page.other_conversations],
        "channels": page.channels_used,
        "merged_from": page.merged_from,
        "unread": page.unread,
        "can_edit": selectors.can_edit_ids(user, conv.assignee_id, conv.team_id),
    }


@pytest.mark.parametrize("username", USERS)
def test_conversation_page_reads_what_the_orm_reads_for_every_role(
    world, username, django_assert_max_num_queries
):
    user = User.objects.get(username=username)
    user.team_ids()  # loaded once per request by the login, not by the page
    seen = 0
    for conv in world["convs"]:
        actual = _actual(user, conv.pk, django_assert_max_num_queries)
        assert actual == _expected(user, conv.pk), conv.pk
        seen += actual is not None
    if username in ("admin", "maria", "sam", "mona"):
        assert seen >= 12
    if username == "nobody":  # no team: only what is assigned to them
        assert seen == sum(c.assignee_id == user.pk for c in world["convs"]) > 0
    if username == "gone":
        assert seen == 0


def test_the_world_exercises_every_panel(world, django_assert_max_num_queries):
    admin, maria = User.objects.get(username="admin"), User.objects.get(username="maria")
    maria.team_ids()  # loaded once per request by the login, not by the page
    pages = [selectors.conversation_page(admin, c.pk) for c in world["convs"]]
    assert any(p.deals for p in pages) and any(p.identities for p in pages)
    assert any(p.other_conversations for p in pages) and any(p.merged_from for p in pages)
    assert any(p.conversation.merged_into_id for p in pages)
    # every branch of the panels' statement (selectors._panels) returns rows, with and without
    # the organisation's deals branch, and panels hold several rows to order
    assert any(o.channel_kinds for p in pages for o in p.other_conversations)
    assert any(len(p.channels_used) > 1 for p in pages) and any(len(p.identities) > 1 for p in pages)
    assert any(len(p.deals) > 1 for p in pages)
    assert any(p.person_visible and p.conversation.person.organisation_id is None for p in pages)
    assert any(p.deals and p.conversation.person.organisation_id for p in pages)
    seen = [_actual(maria, c.pk, django_assert_max_num_queries) for c in world["convs"] if c.person_id]
    assert any(a and not a["person_visible"] for a in seen) and any(a and a["person_visible"] for a in seen)


@pytest.mark.parametrize("username", USERS)
def test_poll_head_and_messages_are_the_orm_ones(world, username):
    user = User.objects.get(username=username)
    for conv in world["convs"][:12]:
        try:
            orm = selectors.conversation_head(user, conv.pk)
        except Http404:
            with pytest.raises(Http404):
                selectors.conversation_head_row(user, conv.pk)
            continue
        head = selectors.conversation_head_row(user, conv.pk)
        assert (head.id, head.status, head.assignee_id, head.team_id) == (
            orm.pk,
            orm.status,
            orm.assignee_id,
            orm.team_id,
        )
        assert selectors.can_edit_ids(
            user, head.assignee_id, head.team_id
        ) == selectors.can_edit_conversation(user, orm)
        ids = [m.pk for m in selectors.messages_of(orm)]
        for after in [0, *ids]:
            for limit in (1, 2, 100):
                assert [tuple(m) for m in selectors.message_rows(head.id, after=after, limit=limit)] == [
                    _orm_message(m) for m in selectors.messages_of(orm, after=after, limit=limit)
                ]


@pytest.mark.parametrize("bad", ["0", "-1", str(2**63), str(2**70), "x", None])
def test_odd_ids_are_not_found(world, bad):
    admin = User.objects.get(username="admin")
    for fn in (selectors.conversation_page, selectors.conversation_head_row):
        with pytest.raises(Http404):
            fn(admin, bad)


def _normalise(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"\s*(<|>)\s*", r"\1", html).strip()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Los_Angeles"])
@pytest.mark.parametrize("can_edit", [True, False])
def test_history_markup_is_the_templates(world, can_edit, zone):
    admin = User.objects.get(username="admin")
    request = RequestFactory().get("/")
    request.user = admin
    token = get_token(request)
    checked = 0
    with timezone.override(zone):
        for conv in world["convs"][:10]:
            orm = selectors.messages_of(selectors.conversation_get(admin, conv.pk))
            expected = render_to_string(
                "conversations/_messages.html",
                {
                    "history": orm,
                    "can_edit": can_edit,
                    "sentiment_labels": actions.SENTIMENT_LABELS,
                    "csrf_token": token,
                },
                request=request,
            )
            built = message_items(
                selectors.message_rows(conv.pk),
                can_edit=can_edit,
                csrf_input=csrf_input(request),
                request=request,
            )
            assert _normalise(built) == _normalise(expected)
            checked += len(orm)
    assert checked >= 30


def test_history_escapes_and_links_what_it_shows(world):
    admin = User.objects.get(username="admin")
    client = login(admin)
    page = "".join(client.get(f"/inbox/{c.pk}/").content.decode() for c in world["convs"][:10])
    assert "Jane &lt;Doe&gt;" in page and "Jane <Doe>" not in page
    assert "line &lt;two&gt; &amp; " in page and 'class="mention"' in page
    assert "Hi<br>there &lt;3" in page
    assert "Refused &lt;by&gt; peer" in page
    assert "<b>there</b>" in page and "<script>x()" not in page
    assert "a&lt;b&gt;.png" in page and "not fetched" in page


def test_poll_returns_the_new_messages_markup_and_nothing_when_none(world):
    maria = User.objects.get(username="maria")
    conv = next(
        c for c in world["convs"][:10] if selectors.can_edit_conversation(maria, c) and c.messages.exists()
    )
    client = login(maria)
    last = conv.messages.order_by("-id").first().pk
    data = client.get(f"/inbox/{conv.pk}/messages.json?after={last}").json()
    assert data == {"last_id": last, "count": 0, "html": "", "status": conv.status}
    first = conv.messages.order_by("id").first().pk
    data = client.get(f"/inbox/{conv.pk}/messages.json?after={first}").json()
    assert data["count"] == conv.messages.count() - 1 and data["last_id"] == last
    assert f'id="m{last}"' in data["html"] and f'id="m{first}"' not in data["html"]
    assert client.get(f"/inbox/{conv.pk}/messages.json?after=junk").json()["count"] == conv.messages.count()


def test_opening_the_page_marks_its_notices_read(world):
    sam = User.objects.get(username="sam")
    client = login(sam)
    for conv in world["convs"][:3]:
        seen = client.get(f"/inbox/{conv.pk}/").status_code == 200
        unread = Notification.objects.filter(user=sam, conversation=conv, read_at__isnull=True).exists()
        assert unread != seen
