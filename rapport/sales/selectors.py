"""Reads on deals: lists, the pipeline board and the forecast, scoped by visibility."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum
from django.db.models.functions import TruncMonth

from rapport.accounts.models import User
from rapport.core.access import get_visible, visibility_q, visible
from rapport.core.errors import ActionError
from rapport.core.pagination import Page, keyset_page
from rapport.core.search import prefix_q
from rapport.sales.models import Deal, DealStageTotal, DealStatus, Pipeline, Stage

DEAL_SORTS = {
    "name": ["name_key", "id"],
    "-created": ["-created_at", "-id"],
    "created": ["created_at", "id"],
    "-amount": ["-amount", "-id"],
    "amount": ["amount", "id"],
}


@dataclass
class DealFilters:
    q: str = ""
    status: str = ""
    pipeline: int | None = None
    stage: int | None = None
    owner: int | None = None
    organisation: int | None = None
    sort: str = "-created"


def deals_visible(user: User) -> QuerySet[Deal]:
    return visible(Deal, user)


def deal_list(
    *, user: User, filters: DealFilters, cursor: str | None = None, limit: int = 50, with_total: bool = True
) -> Page[Deal]:
    if filters.sort not in DEAL_SORTS:
        raise ActionError("Unknown sort order.", {"sort": [f"Choose one of {', '.join(DEAL_SORTS)}."]})
    if filters.status and filters.status not in DealStatus.values:
        raise ActionError("Unknown status.", {"status": [f"Choose one of {', '.join(DealStatus.values)}."]})
    qs = deals_visible(user)
    if filters.q:
        qs = qs.filter(prefix_q("name_key", filters.q))
    for name in ("status", "pipeline", "stage", "owner", "organisation"):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{f"{name}_id" if name != "status" else name: value})
    qs = qs.select_related("stage", "pipeline", "organisation", "owner")
    return keyset_page(qs, DEAL_SORTS[filters.sort], cursor, limit, with_total=with_total)


def deal_detail(*, user: User, deal_id: Any) -> Deal:
    qs = (
        deals_visible(user)
        .select_related("stage", "pipeline", "organisation", "owner", "team")
        .prefetch_related("participants__person")
    )
    return get_visible(Deal, user, deal_id, qs)


@dataclass
class BoardOrg:
    pk: int
    name: str
    owner_id: int
    team_id: int | None
    visibility: str


@dataclass
class BoardCard:
    """What a board card shows, read as plain values: building 180 Deal, Organisation and
    User instances (550 model objects) was the board's biggest single cost after its totals.
    Carries owner_id / team_id / visibility so can_see / can_edit apply to it as to a Deal."""

    pk: int
    name: str
    amount: Decimal
    currency: str
    version: int
    owner_id: int
    team_id: int | None
    visibility: str
    owner_name: str
    organisation: BoardOrg | None


@dataclass
class BoardColumn:
    stage: Stage
    deals: list[BoardCard]
    count: int
    total: Decimal
    weighted: Decimal


BOARD_CARD_FIELDS = (
    "id",
    "name",
    "amount",
    "currency",
    "version",
    "owner_id",
    "team_id",
    "visibility",
    "organisation_id",
    "organisation__name",
    "organisation__owner_id",
    "organisation__team_id",
    "organisation__visibility",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
)


def _card(row: tuple) -> BoardCard:
    pk, name, amount, currency, version, owner_id, team_id, vis, org_id, org_name, o_owner, o_team, o_vis = (
        row[:13]
    )
    username, first, last = row[13:]
    org = BoardOrg(org_id, org_name, o_owner, o_team, o_vis) if org_id is not None else None
    owner_name = f"{first} {last}".strip() or username  # as User.__str__
    return BoardCard(pk, name, amount, currency, version, owner_id, team_id, vis, owner_name, org)


def _stage_sums(user: User, pipeline: Pipeline, base: QuerySet[Deal], owner_id: int | None) -> Iterable[Mapping[str, Any]]:
    """Per stage: {"stage_id", "n", "total"} over the deals `user` may see. On SQLite from the
    trigger-kept DealStageTotal rows (a few hundred instead of every deal); elsewhere live."""
    if connection.vendor != "sqlite":
        return base.values("stage_id").annotate(n=Count("id"), total=Sum("amount")).order_by()
    rows = DealStageTotal.objects.filter(visibility_q(user), pipeline_id=pipeline.pk)
    if owner_id:
        rows = rows.filter(owner_id=owner_id)
    return rows.values("stage_id").annotate(n=Sum("n"), total=Sum("total")).order_by()


def pipeline_board(
    *, user: User, pipeline: Pipeline, per_stage: int = 30, owner_id: int | None = None
) -> list[BoardColumn]:
    """Columns of the board: the biggest deals of each stage, with counts and sums for all."""
    stages = list(pipeline.stages.order_by("position"))
    base = deals_visible(user).filter(pipeline=pipeline)
    if owner_id:
        base = base.filter(owner_id=owner_id)
    sums = {row["stage_id"]: row for row in _stage_sums(user, pipeline, base, owner_id)}
    columns = []
    for stage in stages:
        deals = [
            _card(row)
            # status is implied by the stage, but naming it lets the (stage, status, -amount)
            # index serve the order instead of sorting every deal of the stage.
            for row in base.filter(stage=stage, status=stage.deal_status)
            .order_by("-amount", "-id")
            .values_list(*BOARD_CARD_FIELDS)[:per_stage]
        ]
        agg = sums.get(stage.pk)
        count = int(agg["n"]) if agg else 0
        total = Decimal(agg["total"] or 0) if agg else Decimal("0")
        columns.append(
            BoardColumn(
                stage, deals, count, total, (total * stage.probability / 100).quantize(Decimal("0.01"))
            )
        )
    return columns


@dataclass
class Forecast:
    months: list[dt.date]
    owners: list[dict[str, Any]]  # {"owner": User, "by_month": {month: Decimal}, "total": Decimal}
    totals_by_month: dict[dt.date, Decimal]
    unweighted_by_month: dict[dt.date, Decimal]
    won_by_month: dict[dt.date, Decimal]
    grand_total: Decimal


def forecast(*, user: User, start: dt.date, months: int = 6, pipeline: Pipeline | None = None) -> Forecast:
    """Open deals weighted by their stage's probability, per owner and expected-close month;
    plus what was actually won per month for comparison."""
    month_list = []
    y, m = start.year, start.month
    for _ in range(months):
        month_list.append(dt.date(y, m, 1))
        m += 1
        if m == 13:
            y, m = y + 1, 1
    end = dt.date(y, m, 1)
    qs = deals_visible(user).filter(expected_close__gte=month_list[0], expected_close__lt=end)
    if pipeline:
        qs = qs.filter(pipeline=pipeline)
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability") / 100,
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    rows = (
        qs.filter(status=DealStatus.OPEN)
        .annotate(month=TruncMonth("expected_close"))
        .values("owner_id", "month")
        .annotate(w=Sum(weighted), u=Sum("amount"))
        .order_by()
    )
    per_owner: dict[int, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[dt.date, Decimal] = defaultdict(Decimal)
    unweighted: dict[dt.date, Decimal] = defaultdict(Decimal)
    for row in rows:
        month = (
            row["month"]
            if isinstance(row["month"], dt.date)
            else dt.date.fromisoformat(str(row["month"])[:10])
        )
        month = dt.date(month.year, month.month, 1)
        w = Decimal(row["w"] or 0).quantize(Decimal("0.01"))
        per_owner[row["owner_id"]][month] += w
        totals[month] += w
        unweighted[month] += Decimal(row["u"] or 0)
    won: dict[dt.date, Decimal] = defaultdict(Decimal)
    for won_row in (
        qs.filter(status=DealStatus.WON)
        .annotate(month=TruncMonth("expected_close"))
        .values("month")
        .annotate(s=Sum("amount"))
        .order_by()
    ):
        month = (
            won_row["month"]
            if isinstance(won_row["month"], dt.date)
            else dt.date.fromisoformat(str(won_row["month"])[:10])
        )
        won[dt.date(month.year, month.month, 1)] += Decimal(won_row["s"] or 0)
    users = {u.pk: u for u in User.objects.filter(pk__in=per_owner)}
    owners: list[dict[str, Any]] = [
        {
            "owner": users.get(oid),
            "by_month": dict(by_month),
            "total": sum(by_month.values(), Decimal("0")),
        }
        for oid, by_month in per_owner.items()
    ]
    owners.sort(key=lambda o: -o["total"])
    return Forecast(
        month_list, owners, dict(totals), dict(unweighted), dict(won), sum(totals.values(), Decimal("0"))
    )
