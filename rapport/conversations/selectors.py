"""Reads on conversations, scoped by who may see them (see the models module docstring):
admins everything; others their teams' conversations and those assigned to them."""

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection
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
    return user.can_write and (
        user.is_admin or conversation.assignee_id == user.pk or conversation.team_id in user.team_ids()
    )


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


_ROWS_SELECT = (
    "SELECT c.id, c.subject, c.status, c.priority, c.sentiment, c.sla_state, c.last_message_at, "
    "c.assignee_id, u.username, u.first_name, u.last_name, c.person_id, p.first_name, p.last_name "
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


def inbox_rows(
    *, user: User, filters: InboxFilters, cursor: str | None = None, limit: int = 50
) -> Page[InboxRow]:
    """inbox_list in plain SQL: the same rows, order and cursors (tests compare the two)."""
    if filters.view not in VIEWS:
        raise ActionError("Unknown inbox view.", {"view": [f"Choose one of {', '.join(VIEWS)}."]})
    if filters.status not in ("open", "any", "") and filters.status not in Status.values:
        raise ActionError("Unknown status.", {"status": [f"open, any or one of {', '.join(Status.values)}."]})
    limit = max(1, min(int(limit), 200))
    vis, params = visibility_sql(user, "c")
    where = [vis]
    if filters.view == "mine":
        where.append("c.assignee_id = %s")
        params.append(user.pk)
    elif filters.view == "unassigned":
        where.append("c.assignee_id IS NULL")
    elif filters.view == "teams":
        teams = user.team_ids()
        if not teams:  # the ORM's team_id__in=[] matches nothing
            reads.keyset_sql(INBOX_ORDER, "c", cursor)  # a bad cursor is still an error
            return Page(items=[], next_cursor=None)
        where.append(f"c.team_id IN ({reads.marks(teams)})")
        params += teams
    elif filters.view == "sla":
        where.append("c.sla_state IN (%s, %s)")
        params += [SlaState.AT_RISK.value, SlaState.BREACHED.value]
    if filters.status == "open":
        where.append(f"c.status IN ({reads.marks(OPEN_STATUSES)})")
        params += [s.value for s in OPEN_STATUSES]
    elif filters.status in Status.values:
        where.append("c.status = %s")
        params.append(filters.status)
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
    after, after_params = reads.keyset_sql(INBOX_ORDER, "c", cursor)
    if after:
        where.append(after)
        params += after_params
    found = reads.fetch(
        f"{_ROWS_SELECT} WHERE {' AND '.join(where)} ORDER BY {reads.order_sql(INBOX_ORDER, 'c')} LIMIT %s",  # noqa: S608
        [*params, limit + 1],
    )
    aware = reads.aware
    items = [InboxRow(*r[:6], aware(r[6]), *r[7:]) for r in found[:limit]]  # type: ignore[arg-type, call-arg]
    return Page(
        items=items, next_cursor=reads.next_cursor(items[-1], INBOX_ORDER) if len(found) > limit else None
    )


def unread_count_sql(user: User) -> int:
    """unread_count without compiling a query (it is on every inbox screen)."""
    row = reads.fetch_one(
        "SELECT COUNT(*) FROM conversations_notification WHERE user_id = %s AND read_at IS NULL", [user.pk]
    )
    return row[0] if row else 0


def agent_choices(user: User) -> list[tuple[int, str]]:
    """(id, name as str(user) shows it) of the active agents `user` may assign to: everyone
    for admins, else the members of their teams; _agents_for's users, in its order."""
    where = ["u.is_active = %s", "NOT (u.role = %s)", "NOT (u.username = %s)"]
    params: list[Any] = [True, "readonly", "rapport-bot"]
    join = ""
    if not user.is_admin:
        teams = user.team_ids()
        if not teams:
            return []
        join = " INNER JOIN accounts_user_teams ut ON ut.user_id = u.id"
        where.append(f"ut.team_id IN ({reads.marks(teams)})")
        params += teams
    rows = reads.fetch(
        f"SELECT DISTINCT u.id, u.username, u.first_name, u.last_name FROM accounts_user u{join} "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY u.first_name ASC, u.username ASC",
        params,
    )
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
    rows = reads.fetch(f"SELECT id, name FROM channels_channel{where} ORDER BY name ASC, id ASC", params)  # noqa: S608
    return [(pk, name) for pk, name in rows]
