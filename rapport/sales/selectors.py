"""Reads on deals: lists, the pipeline board and the forecast, scoped by visibility."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from rapport.accounts.models import User
from rapport.core import pagination, reads
from rapport.core.access import get_visible, visible
from rapport.core.errors import ActionError
from rapport.core.pagination import Page, keyset_page
from rapport.core.search import prefix_q, prefix_sql
from rapport.people.selectors import OrgRef
from rapport.sales.models import Deal, DealStatus, Pipeline, Stage

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


@dataclass(slots=True)
class DealRow:
    """A deal as the deals list shows it, read in plain SQL (deal_rows)."""

    pk: int
    name: str
    name_key: str
    status: str
    amount: Decimal
    currency: str
    expected_close: Any
    created_at: Any
    stage_name: str
    owner: str
    organisation_id: int | None
    organisation: "OrgRef | None"

    @property
    def id(self) -> int:
        return self.pk


def deal_rows(
    *, user: User, filters: DealFilters, cursor: str | None = None, limit: int = 50, with_total: bool = True
) -> Page[DealRow]:
    """deal_list for the list screen: the same rows, order, cursors and counts (tests compare
    them), read in plain SQL — the ORM's four joins and model instances were most of the page."""
    if filters.sort not in DEAL_SORTS:
        raise ActionError("Unknown sort order.", {"sort": [f"Choose one of {', '.join(DEAL_SORTS)}."]})
    if filters.status and filters.status not in DealStatus.values:
        raise ActionError("Unknown status.", {"status": [f"Choose one of {', '.join(DealStatus.values)}."]})
    limit = max(1, min(int(limit), 200))
    order = DEAL_SORTS[filters.sort]
    vis, params = reads.visibility_sql(user, "d")
    where = [vis]
    if filters.q:
        cond, cond_params = prefix_sql("d.name_key", filters.q)
        where.append(cond)
        params += cond_params
    for column, value in (
        ("status", filters.status),
        ("pipeline_id", filters.pipeline),
        ("stage_id", filters.stage),
        ("owner_id", filters.owner),
        ("organisation_id", filters.organisation),
    ):
        if value:
            where.append(f"d.{column} = %s")
            params.append(value)
    total = capped = None
    if with_total:
        row = reads.fetch_one(
            f"SELECT COUNT(*) FROM (SELECT d.id FROM sales_deal d WHERE {' AND '.join(where)} LIMIT %s) sub",  # noqa: S608
            [*params, pagination.CAP + 1],
        )
        total = row[0] if row else 0
        capped = total > pagination.CAP
        total = min(total, pagination.CAP)
    after, after_params = reads.keyset_sql(order, "d", cursor, Deal)
    if after:
        where.append(after)
        params += after_params
    found = reads.fetch(
        "SELECT d.id, d.name, d.name_key, d.status, d.amount, d.currency, d.expected_close, d.created_at, "  # noqa: S608
        "s.name, u.username, u.first_name, u.last_name, d.organisation_id, o.name, o.owner_id, o.team_id, "
        "o.visibility FROM sales_deal d INNER JOIN sales_stage s ON s.id = d.stage_id "
        "INNER JOIN accounts_user u ON u.id = d.owner_id "
        "LEFT OUTER JOIN people_organisation o ON o.id = d.organisation_id "
        f"WHERE {' AND '.join(where)} ORDER BY {reads.order_sql(order, 'd')} LIMIT %s",
        [*params, limit + 1],
    )
    items = [
        DealRow(
            pk=r[0], name=r[1], name_key=r[2], status=r[3], amount=reads.decimal(r[4]) or Decimal("0"),
            currency=r[5], expected_close=r[6], created_at=reads.aware(r[7]), stage_name=r[8],
            owner=f"{r[10]} {r[11]}".strip() or r[9], organisation_id=r[12],
            organisation=OrgRef(r[12], r[13], r[14], r[15], r[16]) if r[12] is not None else None,
        )
        for r in found[:limit]
    ]  # fmt: skip
    return Page(
        items=items,
        next_cursor=reads.next_cursor(items[-1], order) if len(found) > limit else None,
        total=total,
        total_capped=bool(capped),
    )


def deal_detail(*, user: User, deal_id: Any) -> Deal:
    qs = (
        deals_visible(user)
        .select_related("stage", "pipeline", "organisation", "owner", "team")
        .prefetch_related("participants__person")
    )
    return get_visible(Deal, user, deal_id, qs)


@dataclass(slots=True)
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
    organisation: OrgRef | None

    @property
    def id(self) -> int:
        return self.pk


@dataclass
class BoardColumn:
    stage: Stage
    deals: list[BoardCard]
    count: int
    total: Decimal
    weighted: Decimal
    more: str | None = None  # cursor for stage_cards when the column has more cards


# The card query: the biggest deals of one stage the user may see. `status` is implied by the
# stage, but naming it lets the (stage, status, -amount) index serve the order instead of
# sorting every deal of the stage.
_CARD_SQL = (
    "SELECT d.id, d.name, d.amount, d.currency, d.version, d.owner_id, d.team_id, d.visibility, "
    "d.organisation_id, o.name, o.owner_id, o.team_id, o.visibility, u.username, u.first_name, u.last_name "
    "FROM sales_deal d INNER JOIN accounts_user u ON u.id = d.owner_id "
    "LEFT OUTER JOIN people_organisation o ON o.id = d.organisation_id "
    "WHERE {where} AND d.stage_id = %s AND d.status = %s{after} ORDER BY d.amount DESC, d.id DESC LIMIT %s"
)
_CARD_ORDER = ["-amount", "-id"]
BOARD_PAGE = 20  # cards per column at first, and per "Show more"


def _card(row: tuple) -> BoardCard:
    pk, name, amount, currency, version, owner_id, team_id, vis, org_id, org_name, o_owner, o_team, o_vis = (
        row[:13]
    )
    username, first, last = row[13:]
    org = OrgRef(org_id, org_name, o_owner, o_team, o_vis) if org_id is not None else None
    owner_name = f"{first} {last}".strip() or username  # as User.__str__
    amount = reads.decimal(amount) or Decimal("0")
    return BoardCard(pk, name, amount, currency, version, owner_id, team_id, vis, owner_name, org)


def _stage_sums(user: User, pipeline: Pipeline, owner_id: int | None) -> dict[int, tuple[int, Decimal]]:
    """Per stage id: (count, sum of amounts) over the deals `user` may see. On SQLite from the
    trigger-kept DealStageTotal rows (a few hundred instead of every deal); elsewhere live
    (PostgreSQL would make concurrent deal writes wait on the same summary rows)."""
    table, alias, count = (
        ("sales_dealstagetotal", "t", "SUM(t.n)")
        if connection.vendor == "sqlite"
        else ("sales_deal", "t", "COUNT(*)")
    )
    vis, params = reads.visibility_sql(user, alias)
    where = f"{vis} AND {alias}.pipeline_id = %s"
    params.append(pipeline.pk)
    if owner_id:
        where += f" AND {alias}.owner_id = %s"
        params.append(owner_id)
    rows = reads.fetch(
        f"SELECT {alias}.stage_id, {count}, SUM({alias}.{'total' if table == 'sales_dealstagetotal' else 'amount'}) "  # noqa: S608
        f"FROM {table} {alias} WHERE {where} GROUP BY {alias}.stage_id",
        params,
    )
    return {stage_id: (int(n or 0), reads.decimal(total or 0) or Decimal("0")) for stage_id, n, total in rows}


def _card_query(user: User, pipeline_id: int, owner_id: int | None) -> tuple[str, list[Any]]:
    vis, vis_params = reads.visibility_sql(user, "d")
    where = f"{vis} AND d.pipeline_id = %s"
    params = [*vis_params, pipeline_id]
    if owner_id:
        where += " AND d.owner_id = %s"
        params.append(owner_id)
    return where, params


def pipeline_board(
    *, user: User, pipeline: Pipeline, per_stage: int = BOARD_PAGE, owner_id: int | None = None
) -> list[BoardColumn]:
    """Columns of the board: the biggest deals of each stage (more on demand, stage_cards),
    with counts and sums for all. Read in plain SQL (core.reads): through the ORM, compiling
    eight queries and building the cards cost more CPU than the database spent finding them."""
    stages = reads.instances(Stage, "WHERE pipeline_id = %s ORDER BY position, id", [pipeline.pk])
    where, base_params = _card_query(user, pipeline.pk, owner_id)
    card_sql = _CARD_SQL.format(where=where, after="")
    sums = _stage_sums(user, pipeline, owner_id)
    columns = []
    for stage in stages:
        rows = reads.fetch(card_sql, [*base_params, stage.pk, stage.deal_status, per_stage + 1])
        deals = [_card(row) for row in rows[:per_stage]]
        count, total = sums.get(stage.pk, (0, Decimal("0.00")))
        columns.append(
            BoardColumn(
                stage,
                deals,
                count,
                total,
                (total * stage.probability / 100).quantize(Decimal("0.01")),
                reads.next_cursor(deals[-1], _CARD_ORDER) if len(rows) > per_stage else None,
            )
        )
    return columns


def stage_cards(
    *, user: User, stage: Stage, cursor: str, limit: int = BOARD_PAGE, owner_id: int | None = None
) -> tuple[list[BoardCard], str | None]:
    """The next cards of a board column after `cursor` (biggest first), and the cursor after
    them if there are more. A missing or bad cursor is an ActionError."""
    if not cursor:
        raise ActionError("Say after which card to go on.", {"after": ["Required."]})
    where, params = _card_query(user, stage.pipeline_id, owner_id)
    after, after_params = reads.keyset_sql(_CARD_ORDER, "d", cursor, Deal)
    rows = reads.fetch(
        _CARD_SQL.format(where=where, after=f" AND {after}"),
        [*params, stage.pk, stage.deal_status, *after_params, limit + 1],
    )
    cards = [_card(row) for row in rows[:limit]]
    return cards, reads.next_cursor(cards[-1], _CARD_ORDER) if len(rows) > limit else None


def pipeline_choices(*, with_stages: bool = False) -> list[Pipeline]:
    """Every pipeline, in order (a handful; read on every board and forecast page), with
    `stage_list` set to its stages in order when asked."""
    pipelines = reads.instances(Pipeline, "ORDER BY position, id")
    if with_stages:
        by_pipeline: dict[int, list[Stage]] = {p.pk: [] for p in pipelines}
        for stage in reads.instances(Stage, "ORDER BY pipeline_id, position, id"):
            by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
        for p in pipelines:
            p.stage_list = by_pipeline[p.pk]  # type: ignore[attr-defined]
    return pipelines


def _month(day: dt.date) -> dt.date:
    # A date column comes back as a date on both databases (Django's SQLite converter reads
    # the column's declared type, GROUP BY included).
    return day.replace(day=1)


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
    # Grouped by day in SQL and into months here: TruncMonth is a Python function called on
    # every row on SQLite (250 ms at 100,000 deals); days are at most a few hundred per owner.
    vis, vis_params = reads.visibility_sql(user, "d")
    where = f"{vis} AND d.status = %s AND d.expected_close >= %s AND d.expected_close < %s"
    extra: list[Any] = []
    if pipeline:
        where += " AND d.pipeline_id = %s"
        extra.append(pipeline.pk)

    def by_day(status: str, select: str, group: str) -> list[tuple[Any, ...]]:
        return reads.fetch(
            f"SELECT {select} FROM sales_deal d INNER JOIN sales_stage s ON s.id = d.stage_id "  # noqa: S608
            f"WHERE {where} GROUP BY {group}",
            [*vis_params, status, month_list[0], end, *extra],
        )

    raw_weighted: dict[int, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unweighted: dict[dt.date, Decimal] = defaultdict(Decimal)
    for owner_id, day, w, u in by_day(
        DealStatus.OPEN, "d.owner_id, d.expected_close, SUM(d.amount * s.probability), SUM(d.amount)",
        "d.owner_id, d.expected_close",
    ):  # fmt: skip
        month = _month(day)
        raw_weighted[owner_id][month] += reads.decimal_sum(w) / 100
        unweighted[month] += reads.decimal_sum(u)
    per_owner: dict[int, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[dt.date, Decimal] = defaultdict(Decimal)
    for owner_id, months_of in raw_weighted.items():
        for month, w in months_of.items():
            w = w.quantize(Decimal("0.01"))
            per_owner[owner_id][month] = w
            totals[month] += w
    unweighted = defaultdict(Decimal, {m: v.quantize(Decimal("0.01")) for m, v in unweighted.items()})
    won: dict[dt.date, Decimal] = defaultdict(Decimal)
    for day, amount in by_day(DealStatus.WON, "d.expected_close, SUM(d.amount)", "d.expected_close"):
        won[_month(day)] += reads.decimal_sum(amount)
    won = defaultdict(Decimal, {m: v.quantize(Decimal("0.01")) for m, v in won.items()})
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
