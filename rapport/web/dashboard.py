"""The home page: what needs the rep today, not management KPIs."""

from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from rapport.accounts.models import User
from rapport.activities.selectors import activities_visible, open_tasks
from rapport.sales.models import DealStatus
from rapport.sales.selectors import deals_visible


def home_context(user: User) -> dict[str, Any]:
    my_open = deals_visible(user).filter(owner=user, status=DealStatus.OPEN)
    agg = my_open.aggregate(n=Count("id"), total=Sum("amount"))
    closing = list(
        my_open.filter(expected_close__isnull=False)
        .select_related("stage", "organisation")
        .order_by("expected_close")[:8]
    )
    recent = list(
        activities_visible(user)
        .select_related("person", "deal", "owner")
        .order_by("-occurred_at", "-id")[:12]
    )
    tasks = open_tasks(user=user)
    now = timezone.now()
    return {
        "tasks": tasks,
        "overdue": sum(1 for t in tasks if t.due_at and t.due_at < now),
        "closing": closing,
        "recent": recent,
        "open_count": agg["n"] or 0,
        "open_total": agg["total"] or 0,
        "now": now,
    }
