"""The timeline: every activity on a person, an organisation or a deal that the user may see."""

import re
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from rapport.accounts.models import User
from rapport.activities.models import Activity, ActivityKind
from rapport.core.access import get_visible, visible
from rapport.core.pagination import Page, keyset_page


def activities_visible(user: User) -> QuerySet[Activity]:
    return visible(Activity, user)


WORD = re.compile(r"\w+")
SEARCH_CANDIDATES = 500


def activities_matching(user: User, text: str, candidates: int = SEARCH_CANDIDATES) -> QuerySet[Activity]:
    """Visible activities whose subject has words starting with each word of `text` ("mar
    call" finds "Call about the March invoice"), through the word index of migration 0002.

    The index hands back the newest `candidates` matches by id; visibility and the recency
    order apply to those, so a common word costs the same as a rare one."""
    words = [w.lower() for w in WORD.findall(text)][:8]
    if not words:
        return Activity.objects.none()
    if connection.vendor == "sqlite":
        # Each word quoted (so AND/OR/NEAR are plain words) and marked as a prefix.
        match = " ".join(f'"{w}"*' for w in words)
        sql = (
            "SELECT rowid FROM activities_activity_fts WHERE activities_activity_fts MATCH %s "
            "ORDER BY rowid DESC LIMIT %s"
        )
        ids = RawSQL(sql, (match, candidates))  # noqa: S611 — fixed SQL, user text is a parameter
    elif connection.vendor == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)  # \w+ words cannot carry tsquery syntax
        sql = (
            "SELECT id FROM activities_activity WHERE to_tsvector('simple', subject) @@ "
            "to_tsquery('simple', %s) ORDER BY id DESC LIMIT %s"
        )
        ids = RawSQL(sql, (query, candidates))  # noqa: S611 — fixed SQL, user text is a parameter
    else:  # another database: a bounded substring scan of the newest activities
        recent = Activity.objects.order_by("-id").values("id")[:candidates]
        qs = activities_visible(user).filter(id__in=recent)
        for w in words:
            qs = qs.filter(subject__icontains=w)
        return qs
    return activities_visible(user).filter(id__in=ids)


_ACCESS = ("owner_id", "team_id", "visibility")
TIMELINE_COLUMNS = (
    "id", "kind", "subject", "body", "occurred_at", "call_direction", "call_duration_s", "call_outcome",
    "due_at", "done_at", "person_id", "deal_id", "organisation_id", "assignee_id", *_ACCESS,
    "owner__id", "owner__username", "owner__first_name", "owner__last_name",
    "person__id", "person__first_name", "person__last_name", *(f"person__{f}" for f in _ACCESS),
    "deal__id", "deal__name", *(f"deal__{f}" for f in _ACCESS),
    "organisation__id", "organisation__name", *(f"organisation__{f}" for f in _ACCESS),
    "assignee__id", "assignee__username", "assignee__first_name", "assignee__last_name",
)  # fmt: skip


def timeline(
    *,
    user: User,
    person_id: int | None = None,
    organisation_id: int | None = None,
    deal_id: int | None = None,
    kind: str = "",
    cursor: str | None = None,
    limit: int = 30,
    for_page: bool = False,
) -> Page[Activity]:
    """A record's activities, newest first. `for_page`: only what a timeline on a record's
    page shows (TIMELINE_COLUMNS); six whole joined rows per activity made compiling and
    reading this query the costliest part of a person's page."""
    qs = activities_visible(user)
    if person_id is not None:
        qs = qs.filter(person_id=person_id)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    if deal_id is not None:
        qs = qs.filter(deal_id=deal_id)
    if kind in ActivityKind.values:
        qs = qs.filter(kind=kind)
    qs = qs.select_related("owner", "person", "deal", "assignee", "organisation")
    if for_page:
        qs = qs.only(*TIMELINE_COLUMNS)
    return keyset_page(qs, ["-occurred_at", "-id"], cursor, limit)


def activity_detail(*, user: User, activity_id: Any) -> Activity:
    return get_visible(
        Activity,
        user,
        activity_id,
        activities_visible(user).select_related("person", "organisation", "deal", "owner"),
    )


def open_tasks(*, user: User, limit: int = 20) -> list[Activity]:
    return list(
        activities_visible(user)
        .filter(kind=ActivityKind.TASK, assignee=user, done_at__isnull=True)
        .select_related("person", "deal", "organisation")
        .order_by("due_at", "id")[:limit]
    )
