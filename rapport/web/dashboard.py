"""The home page: what needs the rep today, not management KPIs.

Read in plain SQL (core.reads) like the other screens people open first: through the ORM it
cost ~25 ms at a million people, most of it summing every open deal of the user."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from rapport.accounts.models import User
from rapport.activities.selectors import open_task_rows, timeline_page
from rapport.core import reads
from rapport.web.timeline import mark_visible_links


@dataclass(frozen=True, slots=True)
class ClosingDeal:
    pk: int
    name: str
    stage_name: str
    amount: Decimal | None
    currency: str
    expected_close: dt.date | None


def _open_deal_totals(user: User) -> tuple[int, Decimal]:
    """Count and sum of the open deals the user owns (always visible to their owner). SQLite
    reads the trigger-kept per-stage summary (sales.DealStageTotal); PostgreSQL sums live."""
    if connection.vendor == "sqlite":
        row = reads.fetch_one(
            "SELECT SUM(t.n), SUM(t.total) FROM sales_dealstagetotal t "
            "INNER JOIN sales_stage s ON s.id = t.stage_id WHERE t.owner_id = %s AND s.is_won = %s AND s.is_lost = %s",
            [user.pk, False, False],
        )
    else:
        row = reads.fetch_one(
            "SELECT COUNT(*), SUM(amount) FROM sales_deal WHERE owner_id = %s AND status = %s",
            [user.pk, "open"],
        )
    n, total = row or (0, 0)
    return int(n or 0), reads.decimal(total or 0) or Decimal("0")


def _closing(user: User, limit: int = 8) -> list[ClosingDeal]:
    rows = reads.fetch(
        "SELECT d.id, d.name, s.name, d.amount, d.currency, d.expected_close FROM sales_deal d "
        "INNER JOIN sales_stage s ON s.id = d.stage_id WHERE d.owner_id = %s AND d.status = %s "
        # By date alone: a tie-break on id made SQLite sort all of the user's open deals,
        # while the forecast index gives dates in order and the scan stops after `limit`.
        "AND d.expected_close IS NOT NULL ORDER BY d.expected_close LIMIT %s",
        [user.pk, "open", limit],
    )
    return [
        ClosingDeal(pk, name, stage, reads.decimal(amount), currency, close)
        for pk, name, stage, amount, currency, close in rows
    ]


def home_context(user: User) -> dict[str, Any]:
    recent = timeline_page(user=user, limit=12).items
    tasks = open_task_rows(user=user)
    for activity in [*recent, *tasks]:
        # An activity shared with everyone can be about a private person or deal: their names
        # are shown only to those who may see them.
        mark_visible_links(user, activity)
    count, total = _open_deal_totals(user)
    now = timezone.now()
    return {
        "tasks": tasks,
        "overdue": sum(1 for t in tasks if t.due_at and t.due_at < now),
        "closing": _closing(user),
        "recent": recent,
        "open_count": count,
        "open_total": total,
        "now": now,
    }
