"""Reads on conversations, scoped by who may see them (see the models module docstring):
admins everything; others their teams' conversations and those assigned to them."""

from dataclasses import dataclass
from typing import Any

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
