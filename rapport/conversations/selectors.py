"""Reads on conversations, scoped by who may see them (see the models module docstring):
admins everything; others their teams' conversations and those assigned to them."""

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connection, models
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from rapport.accounts.models import User
from rapport.channels.models import Channel
from rapport.conversations.models import (
    OPEN_STATUSES,
    CannedAnswer,
    Conversation,
    Message,
    Notification,
    SlaState,
    Status,
)
from rapport.core import reads
from rapport.core.errors import ActionError
from rapport.core.pagination import Page, keyset_page

VIEWS = ("mine", "unassigned", "teams", "all", "sla")
INBOX_ORDER = ["-last_message_at", "-id"]


def visibility_q(user: User) -> Q:
    if user.is_admin:
        return Q()
    return Q(team_id__in=user.team_ids()) | Q(assignee_id=user.pk)


def conversations_visible(user: User) -> QuerySet[Conversation]:
    if not user.is_authenticated or not user.is_active:
        return Conversation.objects.none()
    return Conversation.objects.filter(visibility_q(user))


def can_edit_conversation(user: User, conversation: Conversation) -> bool:
    return can_edit_ids(user, conversation.assignee_id, conversation.team_id)


def conversation_get(user: User, conversation_id: Any) -> Conversation:
    try:
        return (
            conversations_visible(user)
            # Not the organisation and deal rows: nothing reads them through a conversation
            # (their ids are on the row), and they were a third of the query's columns.
            .select_related("assignee", "team", "person", "person__organisation", "reply_channel")
            .get(pk=conversation_id)
        )
    except (Conversation.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found")


def conversation_head(user: User, conversation_id: Any) -> Conversation:
    """Just what the every-two-seconds poll of an open conversation page needs (its status and
    what the edit check reads), without conversation_get's five joined rows."""
    try:
        return conversations_visible(user).only("id", "status", "assignee", "team").get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found")


def conversation_for_edit(user: User, conversation_id: Any) -> Conversation:
    """A conversation the user may change; one they cannot change is "not found" for writes."""
    conversation = conversation_get(user, conversation_id)
    if not can_edit_conversation(user, conversation):
        raise Http404("Not found")
    return conversation


@dataclass
class InboxFilters:
    view: str = "mine"
    status: str = "open"  # "open" = new/open/waiting; or one Status value; or "any"
    channel: int | None = None
    team: int | None = None
    q: str = ""
    assignee: int | None = None


# What the inbox table shows, read as plain rows: model instances (and the team, reply
# channel, nine datetimes and the users' and people's other columns) cost three times as much.
LIST_COLUMNS = (
    "id", "subject", "status", "priority", "sentiment", "sla_state", "last_message_at",
    "assignee_id", "assignee__username", "assignee__first_name", "assignee__last_name",
    "person_id", "person__first_name", "person__last_name",
)  # fmt: skip


def inbox(
    *, user: User, filters: InboxFilters, cursor: str | None = None, limit: int = 50
) -> Page[Conversation]:
    """One page of the inbox, newest activity first."""
    qs = _inbox_queryset(user, filters).select_related("assignee", "person", "team", "reply_channel")
    return keyset_page(qs, INBOX_ORDER, cursor, limit)


def inbox_list(*, user: User, filters: InboxFilters, cursor: str | None = None, limit: int = 50) -> Page[Any]:
    """The same page for the inbox table: named tuples of LIST_COLUMNS."""
    qs = _inbox_queryset(user, filters).values_list(*LIST_COLUMNS, named=True)
    return keyset_page(qs, INBOX_ORDER, cursor, limit)  # type: ignore[type-var]


def _inbox_queryset(user: User, filters: InboxFilters) -> QuerySet[Conversation]:
    if filters.view not in VIEWS:
        raise ActionError("Unknown inbox view.", {"view": [f"Choose one of {', '.join(VIEWS)}."]})
    qs = conversations_visible(user)
    if filters.view == "mine":
        qs = qs.filter(assignee_id=user.pk)
    elif filters.view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    elif filters.view == "teams":
        qs = qs.filter(team_id__in=user.team_ids())
    elif filters.view == "sla":
        qs = qs.filter(sla_state__in=[SlaState.AT_RISK, SlaState.BREACHED])
    if filters.status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status in Status.values:
        qs = qs.filter(status=filters.status)
    elif filters.status not in ("any", ""):
        raise ActionError("Unknown status.", {"status": [f"open, any or one of {', '.join(Status.values)}."]})
    if filters.channel:
        # A per-row probe of the (conversation, channel) unique index keeps the newest-first
        # index scan; a join from the channel's side would sort all its conversations.
        used = Conversation.channels.through.objects.filter(
            conversation_id=OuterRef("pk"), channel_id=filters.channel
        )
        qs = qs.filter(Exists(used))
    if filters.team:
        qs = qs.filter(team_id=filters.team)
    if filters.assignee:
        qs = qs.filter(assignee_id=filters.assignee)
    if filters.q:
        qs = qs.filter(subject__icontains=filters.q[:100])
    return qs


def messages_of(conversation: Conversation, *, after: int = 0, limit: int = 500) -> list[Message]:
    return list(
        Message.objects.filter(conversation=conversation, pk__gt=after)
        .select_related("channel", "author_user")
        # Of the channel and the author only what a message shows: the channel's settings
        # (JSON) and credentials were decoded on every message.
        .defer(*(f"channel__{f}" for f in CHANNEL_UNSHOWN), *(f"author_user__{f}" for f in USER_UNSHOWN))
        .order_by("id")[:limit]
    )


CHANNEL_UNSHOWN = (
    "credentials_encrypted",
    "settings",
    "last_error",
    "last_error_at",
    "created_at",
    "updated_at",
)
USER_UNSHOWN = ("password", "last_login", "date_joined", "email")


def person_conversations(
    user: User, person_id: int | None, *, exclude: int | None = None, limit: int = 20
) -> list[Conversation]:
    if person_id is None:
        return []
    # The page lists their subject, status and channel kinds: not the other columns.
    qs = (
        conversations_visible(user)
        .filter(person_id=person_id)
        .only("id", "subject", "status", "merged_into", "last_message_at")
        .prefetch_related(Prefetch("channels", queryset=Channel.objects.only("id", "kind", "name")))
    )
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return list(qs.order_by("-last_message_at", "-id")[:limit])


def canned_visible(user: User) -> QuerySet[CannedAnswer]:
    """Your own answers (personal or shared) and those shared with your teams (admins: all
    shared ones; personal answers stay personal, even for admins)."""
    if not user.is_authenticated or not user.is_active:
        return CannedAnswer.objects.none()
    shared = Q(team__isnull=False) if user.is_admin else Q(team_id__in=user.team_ids())
    return CannedAnswer.objects.filter(shared | Q(owner_id=user.pk)).select_related("team", "owner")


def canned_get(user: User, canned_id: Any) -> CannedAnswer:
    try:
        return canned_visible(user).get(pk=canned_id)
    except (CannedAnswer.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found")


def notifications_of(user: User, *, limit: int = 100) -> list[Notification]:
    """Your notices, newest first, without the ones about conversations you can no longer see."""
    rows = list(
        Notification.objects.filter(user=user)
        .select_related("conversation")
        .order_by("-created_at", "-id")[:limit]
    )
    ids = {n.conversation_id for n in rows if n.conversation_id}
    seen = set(conversations_visible(user).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    return [n for n in rows if n.conversation_id is None or n.conversation_id in seen]


def unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


# --- the agent screens in plain SQL -----------------------------------------------------
#
# The inbox lists, the conversation page and its two-second poll are the screens agents keep
# open. Through the ORM each compiled query cost ~0.2 ms of Python and each instance ~10 µs:
# half a list page's CPU and most of a conversation page's. The reads below return the same
# rows, order and cursors as the ORM selectors above (tests compare them for every role, on
# SQLite and PostgreSQL); the API keeps using the ORM ones. Statements only bind values.

_CONV = "conversations_conversation"

# On PostgreSQL these statements run as prepared statements (reads.fetch_prepared): planning,
# not executing, was most of the server's work — at 10M messages the conversation page's
# statements took 2.3 ms to plan and 0.6 ms to run (its seven-table row alone 1.3 ms to plan:
# the conversation table has twenty indexes for the planner to weigh). Every statement here
# is an index lookup or a newest-first index walk whose plan does not depend on the values;
# the text search (`q`) is planned every time.
_fetch = reads.fetch_prepared
_fetch_one = reads.fetch_one_prepared


def visibility_sql(user: User, alias: str) -> tuple[str, list[Any]]:
    """A WHERE fragment keeping the conversations of table `alias` that `user` may see, and its
    parameters: the SQL twin of conversations_visible (teams' conversations and those assigned
    to them; admins all)."""
    if not user.is_authenticated or not user.is_active:
        return "1 = 0", []
    if user.is_admin:
        return "1 = 1", []
    teams = user.team_ids()
    if not teams:
        return f"{alias}.assignee_id = %s", [user.pk]
    return f"({alias}.team_id IN ({reads.marks(teams)}) OR {alias}.assignee_id = %s)", [*teams, user.pk]


class InboxRow(NamedTuple):
    """One row of the inbox table: the named tuple inbox_list gives, with the same names."""

    id: int
    subject: str
    status: str
    priority: str
    sentiment: str
    sla_state: str
    last_message_at: dt.datetime
    assignee_id: int | None
    assignee__username: str | None
    assignee__first_name: str | None
    assignee__last_name: str | None
    person_id: int | None
    person__first_name: str | None
    person__last_name: str | None


_ROWS_SELECT_HEAD = (
    "SELECT c.id, c.subject, c.status, c.priority, c.sentiment, c.sla_state, c.last_message_at, "
    "c.assignee_id, u.username, u.first_name, u.last_name, c.person_id, p.first_name, p.last_name"
)
_ROWS_FROM = (
    f"FROM {_CONV} c LEFT OUTER JOIN accounts_user u ON u.id = c.assignee_id "
    "LEFT OUTER JOIN people_person p ON p.id = c.person_id"
)
# The channel filter probes the (conversation, channel) unique index per row, which keeps the
# newest-first index scan (see _inbox_queryset).
_USED_CHANNEL_SQL = (
    "EXISTS (SELECT 1 FROM conversations_conversation_channels cc "
    "WHERE cc.channel_id = %s AND cc.conversation_id = c.id)"
)


def _icontains_sql(column: str, text: str) -> tuple[str, list[Any]]:
    """`column__icontains=text` exactly as the ORM writes it for this database (SQLite's LIKE
    with an escape character; PostgreSQL's UPPER(…::text) LIKE UPPER(…))."""
    lhs = connection.ops.lookup_cast("icontains", "CharField") % column
    rhs = connection.operators["icontains"] % "%s"  # type: ignore[attr-defined]
    return f"{lhs} {rhs}", [f"%{connection.ops.prep_for_like_query(text)}%"]


def _literals(values: Sequence[str]) -> str:
    """SQL string literals of choice values (checked against the model's choices first)."""
    for value in values:
        if not re.fullmatch(r"[a-z_]+", str(value)):
            raise ValueError(f"not a choice value: {value!r}")
    return ", ".join(f"'{value}'" for value in values)


def inbox_rows(
    *, user: User, filters: InboxFilters, cursor: str | None = None, limit: int = 50
) -> Page[InboxRow]:
    """inbox_list in plain SQL: the same rows, order and cursors (tests compare the two)."""
    read, limit = _inbox_rows_read(user, filters, cursor, limit)
    return _inbox_page(reads.fetch_batch([read])[0] if read else [], limit)[0]


class InboxScreen(NamedTuple):
    """What the inbox page reads: its rows, which of their customers the user may see
    (people.selectors.visible_person_ids of the rows' people) and the extras."""

    page: Page[InboxRow]
    visible_people: set[int]
    extras: "InboxExtras"


def inbox_screen(
    *, user: User, filters: InboxFilters, cursor: str | None = None, agents: bool, limit: int = 50
) -> InboxScreen:
    """inbox_rows, visible_person_ids of its people and inbox_extras in one round trip: the
    rows' statement carries each customer's visibility as a column (the people are joined
    already), and the extras' statement goes with it. Three round trips were ~1.5 ms of the
    page's CPU on PostgreSQL (the visibility read's fifty-odd values alone 0.7 ms: psycopg
    parses the text of a statement with more than 50 parameters every time). Raises
    ActionError as inbox_rows does (the caller reads inbox_extras alone then)."""
    read, limit = _inbox_rows_read(user, filters, cursor, limit)
    extras = _inbox_extras_read(user, agents)
    if read is None:
        found, extra_rows = [], reads.fetch_batch([extras])[0]
    else:
        found, extra_rows = reads.fetch_batch([read, extras])
    page, visible = _inbox_page(found, limit)
    return InboxScreen(page, visible, _inbox_extras(extra_rows))


def _inbox_page(found: list[tuple[Any, ...]], limit: int) -> tuple[Page[InboxRow], set[int]]:
    """The page of rows read by _inbox_rows_read's statement, and its visible people."""
    aware = reads.aware
    rows = found[:limit]
    items = [InboxRow(*r[:6], aware(r[6]), *r[7:14]) for r in rows]  # type: ignore[arg-type, call-arg]
    page = Page(
        items=items, next_cursor=reads.next_cursor(items[-1], INBOX_ORDER) if len(found) > limit else None
    )
    return page, {r[11] for r in rows if r[14]}


def _inbox_rows_read(
    user: User, filters: InboxFilters, cursor: str | None, limit: int
) -> tuple[reads.Read | None, int]:
    """The statement of inbox_rows (None: nothing to read) and the page size. Each row ends
    with whether `user` may see its customer: visible_person_ids' condition on the joined
    person."""
    if filters.view not in VIEWS:
        raise ActionError("Unknown inbox view.", {"view": [f"Choose one of {', '.join(VIEWS)}."]})
    if filters.status not in ("open", "any", "") and filters.status not in Status.values:
        raise ActionError("Unknown status.", {"status": [f"open, any or one of {', '.join(Status.values)}."]})
    limit = max(1, min(int(limit), 200))
    pvis, params = reads.visibility_sql(user, "p")
    vis, vparams = visibility_sql(user, "c")
    where = [vis]
    params += vparams
    if filters.view == "mine":
        where.append("c.assignee_id = %s")
        params.append(user.pk)
    elif filters.view == "unassigned":
        where.append("c.assignee_id IS NULL")
    elif filters.view == "teams":
        teams = user.team_ids()
        if not teams:  # the ORM's team_id__in=[] matches nothing
            reads.keyset_sql(INBOX_ORDER, "c", cursor, Conversation)  # a bad cursor is still an error
            return None, limit
        where.append(f"c.team_id IN ({reads.marks(teams)})")
        params += teams
    elif filters.view == "sla":
        where.append(f"c.sla_state IN ({_literals([SlaState.AT_RISK, SlaState.BREACHED])})")
    # The statuses are written in, not bound: a prepared statement's generic plan then knows
    # them ("closed" ones are old: their own index, not the newest-first walk).
    if filters.status == "open":
        where.append(f"c.status IN ({_literals(OPEN_STATUSES)})")
    elif filters.status in Status.values:
        where.append(f"c.status = {_literals([filters.status])}")
    if filters.channel:
        where.append(_USED_CHANNEL_SQL)
        params.append(filters.channel)
    if filters.team:
        where.append("c.team_id = %s")
        params.append(filters.team)
    if filters.assignee:
        where.append("c.assignee_id = %s")
        params.append(filters.assignee)
    if filters.q:
        cond, cond_params = _icontains_sql("c.subject", filters.q[:100])
        where.append(cond)
        params += cond_params
    after, after_params = reads.keyset_sql(INBOX_ORDER, "c", cursor, Conversation)
    if after:
        where.append(after)
        params += after_params
    # The limit is written in (an int from 1 to 201): with LIMIT $n PostgreSQL's generic plan
    # assumes a tenth of the table and never wins over planning each time. A search keeps
    # planning each time: how many subjects hold the text decides the plan.
    sql = (
        f"{_ROWS_SELECT_HEAD}, CASE WHEN p.id IS NOT NULL AND p.merged_into_id IS NULL AND {pvis} "  # noqa: S608
        f"THEN 1 ELSE 0 END {_ROWS_FROM} WHERE {' AND '.join(where)} "
        f"ORDER BY {reads.order_sql(INBOX_ORDER, 'c')} LIMIT {int(limit) + 1}"
    )
    return reads.Read(sql, params, prepared=not filters.q), limit


def unread_count_sql(user: User) -> int:
    """unread_count without compiling a query (it is on every inbox screen)."""
    row = _fetch_one(
        "SELECT COUNT(*) FROM conversations_notification WHERE user_id = %s AND read_at IS NULL", [user.pk]
    )
    return row[0] if row else 0


def agent_choices(user: User) -> list[tuple[int, str]]:
    """(id, name as str(user) shows it) of the active agents `user` may assign to: everyone
    for admins, else the members of their teams; _agents_for's users, in its order."""
    read = _agent_choices_read(user)
    return _agent_choices(reads.fetch_batch([read])[0]) if read else []


def _agent_choices_read(user: User) -> reads.Read | None:
    where = ["u.is_active = %s", "NOT (u.role = %s)", "NOT (u.username = %s)"]
    params: list[Any] = [True, "readonly", "rapport-bot"]
    join = ""
    if not user.is_admin:
        teams = user.team_ids()
        if not teams:
            return None
        join = " INNER JOIN accounts_user_teams ut ON ut.user_id = u.id"
        where.append(f"ut.team_id IN ({reads.marks(teams)})")
        params += teams
    return reads.Read(
        f"SELECT DISTINCT u.id, u.username, u.first_name, u.last_name FROM accounts_user u{join} "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY u.first_name ASC, u.username ASC",
        params,
    )


def _agent_choices(rows: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
    return [(pk, f"{first} {last}".strip() or username) for pk, username, first, last in rows]


def channel_choices(user: User) -> list[tuple[int, str]]:
    """(id, name) of the channels the inbox's channel filter offers: all for admins, else their
    teams' channels."""
    where, params = "", []
    if not user.is_admin:
        teams = user.team_ids()
        if not teams:
            return []
        where, params = f" WHERE team_id IN ({reads.marks(teams)})", teams
    rows = _fetch(f"SELECT id, name FROM channels_channel{where} ORDER BY name ASC, id ASC", params)  # noqa: S608
    return [(pk, name) for pk, name in rows]


class InboxExtras(NamedTuple):
    channels: list[tuple[int, str]]
    unread: int
    agents: list[tuple[int, str]]


def inbox_extras(user: User, *, agents: bool) -> InboxExtras:
    """channel_choices, unread_count_sql and (when `agents`) agent_choices in one statement:
    each round trip cost 0.1–0.3 ms at 10M messages. Each branch is the function's own query,
    ranked by the database (its collation orders the names) and put back in order here."""
    return _inbox_extras(reads.fetch_batch([_inbox_extras_read(user, agents)])[0])


def _inbox_extras_read(user: User, agents: bool) -> reads.Read:
    branches = [
        "SELECT 0 AS tag, CAST(0 AS bigint) AS rn, COUNT(*) AS id, CAST(NULL AS text) AS s1, "
        "CAST(NULL AS text) AS s2, CAST(NULL AS text) AS s3 "
        "FROM conversations_notification WHERE user_id = %s AND read_at IS NULL"
    ]
    params: list[Any] = [user.pk]
    teams = [] if user.is_admin else user.team_ids()
    if user.is_admin or teams:
        where = "" if user.is_admin else f" WHERE team_id IN ({reads.marks(teams)})"
        branches.append(
            "SELECT 1, ROW_NUMBER() OVER (ORDER BY name ASC, id ASC), id, name, CAST(NULL AS text), "  # noqa: S608
            f"CAST(NULL AS text) FROM channels_channel{where}"
        )
        params += teams
        if agents:
            join = "" if user.is_admin else " INNER JOIN accounts_user_teams ut ON ut.user_id = u.id"
            team_cond = "" if user.is_admin else f" AND ut.team_id IN ({reads.marks(teams)})"
            branches.append(
                "SELECT 2, ROW_NUMBER() OVER (ORDER BY a.first_name ASC, a.username ASC), a.id, a.username, "  # noqa: S608
                "a.first_name, a.last_name FROM (SELECT DISTINCT u.id, u.username, u.first_name, u.last_name "
                f"FROM accounts_user u{join} WHERE u.is_active = %s AND NOT (u.role = %s) "
                f"AND NOT (u.username = %s){team_cond}) a"
            )
            params += [True, "readonly", "rapport-bot", *teams]
    return reads.Read(" UNION ALL ".join(f"SELECT * FROM ({b}) b{i}" for i, b in enumerate(branches)), params)


def _inbox_extras(rows: list[tuple[Any, ...]]) -> InboxExtras:
    unread = 0
    channels: list[tuple[int, str]] = []
    found_agents: list[tuple[int, str]] = []
    for tag, _, id_, s1, s2, s3 in sorted(rows, key=lambda r: (r[0], r[1])):
        if tag == 0:
            unread = id_
        elif tag == 1:
            channels.append((id_, s1))
        else:
            found_agents.append((id_, f"{s2} {s3}".strip() or s1))
    return InboxExtras(channels=channels, unread=unread, agents=found_agents)


# --- the conversation page and its poll -------------------------------------------------


def can_edit_ids(user: User, assignee_id: int | None, team_id: int | None) -> bool:
    """can_edit_conversation on a row's two access columns."""
    return user.can_write and (user.is_admin or assignee_id == user.pk or team_id in user.team_ids())


def _conversation_id(value: Any) -> int:
    """A conversation id the database can bind, else "not found" (conversation_get's rule)."""
    try:
        number = int(value)
    except (ValueError, TypeError, OverflowError):
        raise Http404("Not found")
    if not 0 < number < 2**63:
        raise Http404("Not found")
    return number


class Head(NamedTuple):
    """What the two-second poll needs of its conversation."""

    id: int
    status: str
    assignee_id: int | None
    team_id: int | None


def conversation_head_row(user: User, conversation_id: Any) -> Head:
    """conversation_head in plain SQL: one indexed lookup on every poll of an open page."""
    pk = _conversation_id(conversation_id)
    vis, params = visibility_sql(user, "c")
    row = _fetch_one(
        f"SELECT c.id, c.status, c.assignee_id, c.team_id FROM {_CONV} c WHERE c.id = %s AND {vis}",  # noqa: S608
        [pk, *params],
    )
    if row is None:
        raise Http404("Not found")
    return Head(*row)


class MessageRow(NamedTuple):
    """A message as the history shows it (messages_of's instances, flattened): the author is
    str() of the agent who wrote it, the channel its name."""

    id: int
    conversation_id: int
    direction: str
    author_kind: str
    author_value: str
    author_name: str
    author: str | None
    channel_name: str | None
    subject: str
    text: str
    html: str
    attachments: Any
    received_at: dt.datetime
    delivery_status: str
    delivery_error: str
    sentiment: str

    @property
    def pk(self) -> int:  # what the attachments include reads
        return self.id


_MESSAGES_SQL = (
    "SELECT m.id, m.conversation_id, m.direction, m.author_kind, m.author_value, m.author_name, "
    "au.id, au.username, au.first_name, au.last_name, m.channel_id, ch.name, m.subject, m.text, m.html, "
    "m.attachments, m.received_at, m.delivery_status, m.delivery_error, m.sentiment "
    "FROM conversations_message m LEFT OUTER JOIN channels_channel ch ON ch.id = m.channel_id "
    "LEFT OUTER JOIN accounts_user au ON au.id = m.author_user_id "
    "WHERE m.conversation_id = %s AND m.id > %s ORDER BY m.id ASC LIMIT %s"
)


def _attachments(value: Any) -> Any:
    if value is None or value == "[]":
        return []
    if isinstance(value, str):  # JSON text from either database's cursor: the field decodes it
        return _ATTACHMENTS_FIELD.from_db_value(value, None, connection)  # type: ignore[arg-type]
    return value


_ATTACHMENTS_FIELD = Message._meta.get_field("attachments")
assert isinstance(_ATTACHMENTS_FIELD, models.JSONField)


def message_rows(conversation_id: int, *, after: int = 0, limit: int = 500) -> list[MessageRow]:
    """messages_of in plain SQL. The caller has checked the conversation is visible
    (conversation_page, conversation_head_row)."""
    return _message_rows(_fetch(_MESSAGES_SQL, [conversation_id, after, limit]))


def _message_rows(rows: list[tuple[Any, ...]]) -> list[MessageRow]:
    aware = reads.aware
    return [
        MessageRow(
            r[0], r[1], r[2], r[3], r[4], r[5],
            (f"{r[8]} {r[9]}".strip() or r[7]) if r[6] is not None else None,
            r[11] if r[10] is not None else None,
            r[12], r[13], r[14], _attachments(r[15]), aware(r[16]), r[17], r[18], r[19],  # type: ignore[arg-type]
        )
        for r in rows
    ]  # fmt: skip


class IdentityRow(NamedTuple):
    kind: str
    value: str


class DealRow(NamedTuple):
    id: int
    name: str
    amount: Any
    currency: str
    stage_name: str


class OtherConversation(NamedTuple):
    id: int
    subject: str
    status: str
    merged_into_id: int | None
    channel_kinds: list[str]


@dataclass
class ConversationPage:
    """Everything the conversation page shows, read in plain SQL (see conversation_page)."""

    conversation: Conversation
    person_visible: bool
    history: list[MessageRow]
    identities: list[IdentityRow]
    deals: list[DealRow]
    other_conversations: list[OtherConversation]
    channels_used: list[str]
    merged_from: list[int]
    unread: int
    # agent_choices, when asked for (else empty)
    agents: list[tuple[int, str]] = field(default_factory=list)


@functools.cache
def _page_select() -> tuple[
    str, str, list[str], list[int], list[tuple[str, type[models.Model], tuple[str, ...]]]
]:
    """The conversation with the rows its page names (assignee, team, person and their
    organisation, reply channel, the conversation it was merged into), each related group in
    its model's field order for Model.from_db."""
    from rapport.accounts.models import Team
    from rapport.people.models import Organisation, Person

    fields = list(Conversation._meta.concrete_fields)
    names = [f.attname for f in fields]
    dates = [i for i, f in enumerate(fields) if isinstance(f, models.DateTimeField)]
    related_spec: list[tuple[str, type[models.Model], str, tuple[str, ...], str]] = [
        ("assignee", User, "u", ("id", "username", "first_name", "last_name"), "u.id = c.assignee_id"),
        ("team", Team, "t", ("id", "name"), "t.id = c.team_id"),
        (
            "person", Person, "p",
            ("id", "first_name", "last_name", "organisation_id", "is_vip", "needs_review"),
            "p.id = c.person_id",
        ),
        (
            "person.organisation", Organisation, "o",
            ("id", "name", "owner_id", "team_id", "visibility"),  # its name shows only to those who may see it
            "o.id = p.organisation_id",
        ),
        ("reply_channel", Channel, "rc", ("id", "kind", "name"), "rc.id = c.reply_channel_id"),
        ("merged_into", Conversation, "mi", ("id", "subject"), "mi.id = c.merged_into_id"),
    ]  # fmt: skip
    related = [(attr, model, reads.in_model_order(model, cols)) for attr, model, _, cols, _ in related_spec]
    columns = ", ".join(
        [f"c.{f.column}" for f in fields]
        + [
            f"{spec[2]}.{col}"
            for spec, (_, _, cols) in zip(related_spec, related, strict=True)
            for col in cols
        ]
    )
    joins = " ".join(
        f"LEFT OUTER JOIN {model._meta.db_table} {al} ON {on}" for _, model, al, _, on in related_spec
    )
    return columns, f"FROM {_CONV} c {joins}", names, dates, related


def conversation_page(user: User, conversation_id: Any, *, agents: bool = False) -> ConversationPage:
    """The conversation page's reads: conversation_get, messages_of, the person's visibility,
    identities, deals (views._deals_of), person_conversations, the channels used, the merges
    and unread_count (and agent_choices when `agents`), in plain SQL with the same rows and
    order (tests compare them). Through the ORM the page compiled fifteen queries and built a
    hundred instances: 13 ms of CPU. Two round trips: the conversation's row with the history
    and the agents (read before the row is checked: they are dropped with it when it is not
    found), then the panels, which need the row's person."""
    pk = _conversation_id(conversation_id)
    columns, tables, names, dates, related = _page_select()
    vis, params = visibility_sql(user, "c")
    # people_visible(user).filter(pk=…).exists() on the joined person, and unread_count, as
    # two more columns of the same row.
    pvis, pparams = reads.visibility_sql(user, "p")
    batch = [
        reads.Read(
            f"SELECT {columns}, "  # noqa: S608
            f"CASE WHEN p.id IS NOT NULL AND p.merged_into_id IS NULL AND {pvis} THEN 1 ELSE 0 END, "
            "(SELECT COUNT(*) FROM conversations_notification n WHERE n.user_id = %s AND n.read_at IS NULL) "
            f"{tables} WHERE c.id = %s AND {vis}",
            [*pparams, user.pk, pk, *params],
        ),
        reads.Read(_MESSAGES_SQL, [pk, 0, 500]),
    ]
    agents_read = _agent_choices_read(user) if agents else None
    if agents_read is not None:
        batch.append(agents_read)
    found = reads.fetch_batch(batch)
    if not found[0]:
        raise Http404("Not found")
    row = found[0][0]
    alias = connection.alias
    n = len(names)
    values = list(row[:n])
    for i in dates:
        values[i] = reads.aware(values[i])
    conv = Conversation.from_db(alias, names, values)
    at = n
    holders: dict[str, models.Model | None] = {"": conv}
    for attr, model, cols in related:
        part = list(row[at : at + len(cols)])
        at += len(cols)
        owner_path, _, name = attr.rpartition(".")
        owner = holders.get(owner_path)
        obj = None
        if part[cols.index("id")] is not None:
            for i, col in enumerate(cols):
                if col in ("is_vip", "needs_review"):
                    part[i] = bool(part[i])
            obj = model.from_db(alias, cols, part)
        holders[attr] = obj
        if owner is not None:
            owner._meta.get_field(name).set_cached_value(owner, obj)  # type: ignore[union-attr]
    person_visible, unread = bool(row[at]), row[at + 1]
    person_id = conv.person_id
    organisation_id = conv.person.organisation_id if person_visible else None  # type: ignore[union-attr]
    panels = _panels(user, pk, person_id if person_visible else None, organisation_id)
    return ConversationPage(
        conversation=conv,
        person_visible=person_visible,
        history=_message_rows(found[1]),
        identities=panels.identities,
        deals=panels.deals,
        other_conversations=panels.others,
        channels_used=panels.used,
        merged_from=panels.merged_from,
        unread=unread,
        agents=_agent_choices(found[2]) if agents_read is not None else [],
    )


class _Panels(NamedTuple):
    identities: list[IdentityRow]
    deals: list[DealRow]
    others: list[OtherConversation]
    used: list[str]
    merged_from: list[int]


# The page's panels in one statement: each round trip cost 0.1–0.3 ms at 10M messages, six of
# them a third of the page's time on the server. Every branch is the query the panel ran on its
# own (same WHERE, ORDER BY and LIMIT, so the same index walks), wrapped in a subquery (SQLite
# allows ORDER BY/LIMIT in a UNION's branch only there) and tagged; the union's order is not
# the branches' order, so each row carries its rank within its panel, computed by the database
# (its collation orders channel names) and the rows are put back in order here. NULLs are cast:
# an untyped NULL in a subquery is text to PostgreSQL and would not unite with a number.
_T_MERGED, _T_CHANNEL, _T_IDENTITY, _T_DEAL, _T_OTHER = range(5)
_NULL_INT, _NULL_TEXT, _NULL_NUM = "CAST(NULL AS bigint)", "CAST(NULL AS text)", "CAST(NULL AS numeric)"
# tag, rank, id, ref, s1, s2, s3, amount
_MERGED_BRANCH = (
    f"SELECT {_T_MERGED} AS tag, id AS rn, id, {_NULL_INT} AS ref, {_NULL_TEXT} AS s1, "
    f"{_NULL_TEXT} AS s2, {_NULL_TEXT} AS s3, {_NULL_NUM} AS amount "
    f"FROM {_CONV} WHERE merged_into_id = %s ORDER BY id ASC LIMIT 20"
)
_IDENTITY_BRANCH = (
    f"SELECT {_T_IDENTITY}, ROW_NUMBER() OVER (ORDER BY is_primary DESC, kind ASC, id ASC), id, "
    f"{_NULL_INT}, kind, value, {_NULL_TEXT}, {_NULL_NUM} FROM people_identity WHERE person_id = %s"
)
_OTHERS_CTE = (
    "WITH o AS (SELECT c.id, c.subject, c.status, c.merged_into_id, "
    f"ROW_NUMBER() OVER (ORDER BY {reads.order_sql(INBOX_ORDER, 'c')}) AS rn FROM {_CONV} c "
    "WHERE {vis} AND c.person_id = %s AND NOT (c.id = %s) "
    f"ORDER BY {reads.order_sql(INBOX_ORDER, 'c')} LIMIT 20) "
)
_OTHERS_BRANCH = (
    f"SELECT {_T_OTHER}, rn, id, merged_into_id, subject, status, {_NULL_TEXT}, {_NULL_NUM} FROM o"
)
_CHANNEL_BRANCH = (
    f"SELECT {_T_CHANNEL}, ROW_NUMBER() OVER (ORDER BY ch.name ASC, ch.id ASC), cc.conversation_id, "
    f"ch.id, ch.kind, ch.name, {_NULL_TEXT}, {_NULL_NUM} FROM conversations_conversation_channels cc "
    "INNER JOIN channels_channel ch ON ch.id = cc.channel_id WHERE cc.conversation_id IN ({ids})"
)
_DEAL_COLUMNS = f"{_T_DEAL}, d.id, d.id, {_NULL_INT}, d.name, d.currency, s.name, d.amount"


def _panels(user: User, pk: int, person_id: int | None, organisation_id: int | None) -> _Panels:
    """The page's panels: the merges into it and its channels always; when its person is
    visible (person_id given) their identities, deals (views._deals_of: the ten newest visible
    deals the person takes part in or their organisation has, from two indexed top-10 reads)
    and other conversations (person_conversations). The SQL twin of the ORM reads, checked
    against them for every role."""
    branches = [_MERGED_BRANCH]
    params: list[Any] = [pk]
    prefix, others_params = "", []
    channel_ids = "%s"
    if person_id is not None:
        vis, vparams = visibility_sql(user, "c")
        prefix = _OTHERS_CTE.format(vis=vis)
        others_params = [*vparams, person_id, pk]
        channel_ids = "SELECT CAST(%s AS bigint) UNION ALL SELECT id FROM o"
        branches += [_IDENTITY_BRANCH, _OTHERS_BRANCH]
        params.append(person_id)
        dvis, dparams = reads.visibility_sql(user, "d")
        branches.append(
            f"SELECT DISTINCT {_DEAL_COLUMNS} FROM sales_deal d "
            "INNER JOIN sales_dealparticipant dp ON dp.deal_id = d.id "
            "INNER JOIN sales_stage s ON s.id = d.stage_id "
            f"WHERE {dvis} AND dp.person_id = %s ORDER BY d.id DESC LIMIT 10"
        )
        params += [*dparams, person_id]
        if organisation_id is not None:
            branches.append(
                f"SELECT {_DEAL_COLUMNS} FROM sales_deal d INNER JOIN sales_stage s ON s.id = d.stage_id "
                f"WHERE {dvis} AND d.organisation_id = %s ORDER BY d.id DESC LIMIT 10"
            )
            params += [*dparams, organisation_id]
    branches.append(_CHANNEL_BRANCH.format(ids=channel_ids))
    params.append(pk)
    sql = prefix + " UNION ALL ".join(f"SELECT * FROM ({b}) b{i}" for i, b in enumerate(branches))
    rows = sorted(_fetch(sql, [*others_params, *params]), key=lambda r: (r[0], r[1]))
    merged_from: list[int] = []
    identities: list[IdentityRow] = []
    deals: dict[int, DealRow] = {}
    others: list[OtherConversation] = []
    kinds: dict[int, list[str]] = {}
    used: list[str] = []
    for tag, _, id_, ref, s1, s2, s3, amount in rows:
        if tag == _T_MERGED:
            merged_from.append(id_)
        elif tag == _T_CHANNEL:
            if id_ == pk:
                used.append(s2)
            else:
                kinds.setdefault(id_, []).append(s1)
        elif tag == _T_IDENTITY:
            identities.append(IdentityRow(s1, s2))
        elif tag == _T_DEAL:
            deals[id_] = DealRow(id_, s1, reads.decimal(amount), s2, s3)
        else:
            others.append(OtherConversation(id_, s1, s2, ref, []))
    return _Panels(
        identities=identities,
        deals=[deals[k] for k in sorted(deals, reverse=True)[:10]],
        others=[o._replace(channel_kinds=kinds.get(o.id, [])) for o in others],
        used=used,
        merged_from=merged_from,
    )
