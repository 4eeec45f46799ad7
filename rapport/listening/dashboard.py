"""Dashboard figures from the daily rollups: each figure is one GROUP BY over an indexed,
bounded day range of a rollup table, so the cost does not grow with the number of mentions.

    volume and sentiment per day/week     MentionDaily (query_id, day, source, sentiment)
    share of voice                        MentionDaily per query, brand vs competitors
    per-source breakdown                  MentionDaily
    top / emerging topics                 TopicDaily (day, term)
    advocates / detractors                AuthorTotal or AuthorWeekly bounds, AuthorDaily sums"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Max, Q, Sum
from django.utils import timezone

from rapport.accounts.models import User
from rapport.listening.models import (
    AuthorDaily,
    AuthorTotal,
    AuthorWeekly,
    ListeningQuery,
    MentionDaily,
    TopicDaily,
)
from rapport.listening.rollups import week_of
from rapport.listening.selectors import queries_visible

MAX_DAYS = 366
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass
class Figures:
    since: dt.date
    until: dt.date
    bucket: str  # day | week
    query_id: int
    labels: list[str] = field(default_factory=list)
    volume: dict[str, list[int]] = field(default_factory=dict)  # sentiment → per bucket
    totals: dict[str, int] = field(default_factory=dict)
    share_of_voice: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    top_topics: list[dict[str, Any]] = field(default_factory=list)
    emerging_topics: list[dict[str, Any]] = field(default_factory=list)
    advocates: list[dict[str, Any]] = field(default_factory=list)
    detractors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["since"], d["until"] = self.since.isoformat(), self.until.isoformat()
        return d


def figures(
    user: User,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    query_id: int = 0,
    bucket: str = "",
) -> Figures:
    until = until or timezone.localdate()
    since = since or until - dt.timedelta(days=29)
    if since > until:
        since, until = until, since
    since = max(since, until - dt.timedelta(days=MAX_DAYS - 1))
    days = (until - since).days + 1
    bucket = bucket if bucket in ("day", "week") else ("week" if days > 92 else "day")
    fig = Figures(since=since, until=until, bucket=bucket, query_id=query_id)
    visible_queries = {q.pk: q for q in queries_visible(user).filter(is_active=True)}
    if query_id and query_id not in visible_queries:
        query_id = fig.query_id = 0  # an invisible query shows the overall picture

    # Volume and sentiment per bucket.
    def key(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday()) if bucket == "week" else day

    first = key(since)
    buckets: list[dt.date] = []
    d = first
    while d <= until:
        buckets.append(d)
        d += dt.timedelta(days=7 if bucket == "week" else 1)
    index = {b: i for i, b in enumerate(buckets)}
    fig.labels = [b.strftime("%d %b") for b in buckets]
    fig.volume = {s: [0] * len(buckets) for s in SENTIMENTS}
    rows = (
        MentionDaily.objects.filter(query_id=query_id, day__gte=since, day__lte=until)
        .values("day", "sentiment")
        .annotate(n=Sum("count"))
    )
    for r in rows:
        if r["sentiment"] in fig.volume:
            fig.volume[r["sentiment"]][index[key(r["day"])]] += r["n"]
    fig.totals = {s: sum(v) for s, v in fig.volume.items()}
    fig.totals["all"] = sum(fig.totals.values())

    # Share of voice: our brand/product queries against each competitor query.
    if visible_queries:
        per_query = dict(
            MentionDaily.objects.filter(query_id__in=list(visible_queries), day__gte=since, day__lte=until)
            .values("query_id")
            .annotate(n=Sum("count"))
            .values_list("query_id", "n")
        )
        sov = [
            {"name": q.name, "count": per_query.get(q.pk, 0), "competitor": q.is_competitor, "query_id": q.pk}
            for q in visible_queries.values()
            if q.is_competitor or q.kind in ("brand", "product")
        ]
        total = sum(x["count"] for x in sov) or 1
        for x in sov:
            x["share"] = round(100 * x["count"] / total, 1)
        fig.share_of_voice = sorted(sov, key=lambda x: -x["count"])

    # Per source.
    per_source: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SENTIMENTS, 0))
    for s in (
        MentionDaily.objects.filter(query_id=query_id, day__gte=since, day__lte=until)
        .values("source_kind", "sentiment")
        .annotate(n=Sum("count"), e=Sum("engagement"))
    ):
        if s["sentiment"] in SENTIMENTS:
            per_source[s["source_kind"]][s["sentiment"]] += s["n"]
    fig.sources = sorted(
        ({"source": k, **v, "total": sum(v.values())} for k, v in per_source.items()),
        key=lambda x: -x["total"],
    )

    # Topics: top in the range; emerging = last 7 days against the 28 days before.
    fig.top_topics = [
        {"term": r["term"], "count": r["n"], "negative": r["neg"]}
        for r in TopicDaily.objects.filter(day__gte=since, day__lte=until)
        .values("term")
        .annotate(n=Sum("count"), neg=Sum("negative"))
        .order_by("-n", "term")[:15]
    ]
    recent_start = until - dt.timedelta(days=6)
    base_start = recent_start - dt.timedelta(days=28)
    recent = {
        r["term"]: r["n"]
        for r in TopicDaily.objects.filter(day__gte=recent_start, day__lte=until)
        .values("term")
        .annotate(n=Sum("count"))
        .order_by("-n")[:200]
    }
    if recent:
        before = dict(
            TopicDaily.objects.filter(day__gte=base_start, day__lt=recent_start, term__in=list(recent))
            .values("term")
            .annotate(n=Sum("count"))
            .values_list("term", "n")
        )
        emerging = []
        for term, n in recent.items():
            weekly_before = before.get(term, 0) / 4
            growth = n / max(weekly_before, 1.0)
            if n >= 3 and growth >= 2:
                emerging.append(
                    {"term": term, "count": n, "before": round(weekly_before, 1), "growth": round(growth, 1)}
                )
        fig.emerging_topics = sorted(emerging, key=lambda x: (-x["growth"], -x["count"]))[:10]

    # Advocates and detractors: most positive / negative mentions in the range, then influence.
    advocates, detractors = _advocates_and_detractors(since, until)
    fig.advocates = [_author(a) for a in advocates]
    fig.detractors = [_author(a) for a in detractors]
    return fig


TOP_AUTHORS = 10
CANDIDATE_CHUNK = 100
CANDIDATE_BUDGET = 200  # all-time totals: past this, walking costs more than grouping the range
WEEK_BUDGET = 600  # weekly bounds are tight: a deeper walk still beats grouping the range
# Weekly bounds are close: the top ten are usually among the first few dozen candidates, and
# each candidate costs its days of the range, so smaller chunks overshoot less.
WEEK_CHUNK = 40
TOTALS_SLACK = dt.timedelta(days=7)  # ranges missing at most this much data try the totals first
_AUTHOR_ROW = ("source_kind", "author_handle", "pos", "neg", "n", "inf", "name", "person")
_SIGN = {"positive": 2, "negative": 3}  # the ranked count's place in an author row

# (offset, size) → authors as (source, handle, bound, bound influence), highest bound first
Candidates = Callable[[int, int], list[tuple]]


def _rank_key(row: tuple, column: str) -> tuple:
    # (count, influence) high first, then the handle, so ties come out the same every time.
    return (-row[_SIGN[column]], -(row[5] or 0.0), row[0], row[1])


def _range_rows(since: dt.date, until: dt.date, **author_filter: Any) -> list[tuple]:
    return list(
        AuthorDaily.objects.filter(day__gte=since, day__lte=until, **author_filter)
        .filter(Q(positive__gt=0) | Q(negative__gt=0))
        .values("source_kind", "author_handle")
        .annotate(
            pos=Sum("positive"),
            neg=Sum("negative"),
            n=Sum("total"),
            inf=Max("influence"),
            name=Max("author_name"),
            person=Max("person_id"),
        )
        .values_list(*_AUTHOR_ROW)
    )


def _advocates_and_detractors(since: dt.date, until: dt.date) -> tuple[list[tuple], list[tuple]]:
    """Both top-ten lists, exactly, without grouping every author-day of the range when an
    upper bound per author lets us stop early (`_ranked`). The bound: all-time totals when the
    range holds (nearly) every day there is (they are then about the range's own sums; no
    grouping at all), otherwise, or if that walk runs long, the sums of the weeks that cover
    the range (one small grouping serves both lists). Should that walk run long too, one
    grouping of the range serves both lists (`_top`)."""
    first = AuthorDaily.objects.order_by("day").values_list("day", flat=True).first()
    if first is None:
        return [], []
    last = AuthorDaily.objects.order_by("-day").values_list("day", flat=True).first() or first
    lists: list[list[tuple] | None] = [None, None]
    if since <= first + TOTALS_SLACK and until >= last - TOTALS_SLACK:
        # The range holds (nearly) every day there is: the totals are (nearly) its own sums.
        lists = [_ranked(since, until, c, _total_candidates(c), CANDIDATE_BUDGET) for c in _SIGN]
    if None in lists:
        bounds = _week_bounds(since, until)
        lists = [
            found
            if found is not None
            else _ranked(since, until, c, _week_candidates(bounds, c), WEEK_BUDGET, WEEK_CHUNK)
            for found, c in zip(lists, _SIGN, strict=True)
        ]
    advocates, detractors = lists
    if advocates is None or detractors is None:
        everyone = _range_rows(since, until)
        advocates = advocates if advocates is not None else _top(everyone, "positive")
        detractors = detractors if detractors is not None else _top(everyone, "negative")
    return advocates, detractors


def _total_candidates(column: str) -> Candidates:
    totals = AuthorTotal.objects.filter(**{f"{column}__gt": 0}).order_by(f"-{column}", "-influence", "id")
    rows = totals.values_list("source_kind", "author_handle", column, "influence")
    return lambda offset, size: list(rows[offset : offset + size])


def _week_bounds(since: dt.date, until: dt.date) -> list[tuple]:
    """Per author, the counts of the weeks covering [since, until]: ≥ the range's own. Raw
    SQL: thousands of rows, and the ORM's per-row conversion cost more than the query."""
    q = connection.ops.quote_name
    sql = (
        f"SELECT source_kind, author_handle, SUM(positive), SUM(negative), MAX(influence) "
        f"FROM {q(AuthorWeekly._meta.db_table)} WHERE week >= %s AND week <= %s "
        f"AND (positive > 0 OR negative > 0) GROUP BY source_kind, author_handle"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [week_of(since), week_of(until)])
        return cursor.fetchall()


def _week_candidates(bounds: list[tuple], column: str) -> Candidates:
    i = _SIGN[column]
    # Sorted as plain tuples (no key function): count and influence high first, then the name.
    order = sorted((-b[i], -(b[4] or 0.0), b[0], b[1]) for b in bounds if b[i])
    rows = [(source, handle, -count, -inf) for count, inf, source, handle in order]
    return lambda offset, size: rows[offset : offset + size]


def _ranked(
    since: dt.date, until: dt.date, column: str, candidates: Candidates, budget: int, chunk_size: int = 0
) -> list[tuple] | None:
    """The top authors of the range by `column`, exactly. `candidates` lists authors by an
    upper bound of their range count (and influence), highest first; they are read a hundred
    at a time and their range sums computed; once the tenth best range score beats the next
    author's bound nobody later can enter. None past `budget` candidates: the caller then
    groups every author row of the range once, for both lists (`_top`)."""
    best: list[tuple] = []
    chunk_size = chunk_size or CANDIDATE_CHUNK
    for offset in range(0, budget, chunk_size):
        chunk = candidates(offset, chunk_size)
        wanted = {(c[0], c[1]) for c in chunk}
        rows = _range_rows(since, until, author_handle__in={c[1] for c in chunk}) if chunk else []
        # Keyed by author: an ingest between two chunks may move an author into the next one.
        found = {(r[0], r[1]): r for r in best}
        found.update({(r[0], r[1]): r for r in rows if (r[0], r[1]) in wanted})
        best = sorted((r for r in found.values() if r[_SIGN[column]]), key=lambda r: _rank_key(r, column))[
            :TOP_AUTHORS
        ]
        if len(chunk) < chunk_size:
            return best  # every author with a count was read
        _, _, bound, bound_inf = chunk[-1]
        if len(best) == TOP_AUTHORS and (best[-1][_SIGN[column]], best[-1][5] or 0.0) > (bound, bound_inf):
            return best
    return None


def _top(rows: list[tuple], column: str) -> list[tuple]:
    return heapq.nsmallest(
        TOP_AUTHORS, (r for r in rows if r[_SIGN[column]]), key=lambda r: _rank_key(r, column)
    )


def _author(r: tuple) -> dict[str, Any]:
    source, handle, pos, neg, total, inf, name, person = r
    return {
        "source": source,
        "handle": handle,
        "name": name or handle,
        "positive": pos,
        "negative": neg,
        "total": total,
        "influence": round(inf or 0, 1),
        "person_id": person,
    }


def competitor_queries(user: User) -> list[ListeningQuery]:
    return list(queries_visible(user).filter(is_competitor=True))
