"""The timeline: every activity on a person, an organisation or a deal that the user may see."""

from typing import Any

from django.db.models import QuerySet

from rapport.accounts.models import User
from rapport.activities.models import Activity, ActivityKind
from rapport.core.access import get_visible, visible
from rapport.core.pagination import Page, keyset_page


def activities_visible(user: User) -> QuerySet[Activity]:
    return visible(Activity, user)


def timeline(
    *,
    user: User,
    person_id: int | None = None,
    organisation_id: int | None = None,
    deal_id: int | None = None,
    kind: str = "",
    cursor: str | None = None,
    limit: int = 30,
) -> Page[Activity]:
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
