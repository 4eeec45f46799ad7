"""Daily rollups kept at ingest, so dashboards over a million mentions read a few hundred
rows: counts per day × query × source × sentiment, topics per day, authors per day, per
week and in total.

`add` runs inside the ingest transaction; increments are done by the database
(INSERT … ON CONFLICT DO UPDATE), so concurrent pollers add up correctly. `rebuild`
recomputes any date range from the mentions themselves (after restoring a backup, or after
deleting mentions)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, models, transaction
from django.utils import timezone

from rapport.listening.models import (
    AuthorDaily,
    AuthorTotal,
    AuthorWeekly,
    Mention,
    MentionDaily,
    MentionMatch,
    TopicDaily,
)

TOPICS_PER_MENTION = 8


def _day(when: dt.datetime) -> dt.date:
    return timezone.localtime(when).date() if timezone.is_aware(when) else when.date()


def week_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def add(mentions: Iterable[Mention]) -> None:
    daily: dict[tuple[int, dt.date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    topics: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0])
    authors: dict[tuple[dt.date, str, str], dict] = {}
    for m in mentions:
        day = _day(m.published_at)
        for qid in [0, *getattr(m, "matched_query_ids", [])]:
            row = daily[(qid, day, m.source_kind, m.sentiment)]
            row[0] += 1
            row[1] += m.engagement
            row[2] += m.reach
        for term in [*(f"#{t}" for t in m.hashtags), *m.keywords][:TOPICS_PER_MENTION]:
            t = topics[(day, term[:100])]
            t[0] += 1
            t[1] += m.sentiment == "negative"
        if m.author_handle:
            a = authors.setdefault(
                (day, m.source_kind, m.author_handle),
                {"name": m.author_name, "person_id": m.person_id, "pos": 0, "neg": 0, "total": 0, "inf": 0.0},
            )
            a["pos"] += m.sentiment == "positive"
            a["neg"] += m.sentiment == "negative"
            a["total"] += 1
            a["inf"] = max(a["inf"], m.influence)
            a["person_id"] = a["person_id"] or m.person_id
    _merge_daily(daily)
    _merge_topics(topics)
    _merge_authors(authors)


def _upsert(
    model: type[models.Model],
    keys: list[str],
    rows: list[tuple],
    *,
    add: list[str],
    greatest: tuple[str, ...] = (),
    keep_first: tuple[str, ...] = (),
) -> None:
    """INSERT … ON CONFLICT DO UPDATE with increments done by the database: one statement
    per batch, atomic per row, so concurrent pollers cannot lose each other's counts.
    SQLite (≥ 3.24) and PostgreSQL share the syntax; table and column names come from our
    models, values are parameters."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [*keys, *add, *greatest, *keep_first]
    q = connection.ops.quote_name
    big = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    sets = [f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in add]
    sets += [f"{q(c)} = {big}({table}.{q(c)}, excluded.{q(c)})" for c in greatest]
    sets += [f"{q(c)} = COALESCE({table}.{q(c)}, excluded.{q(c)})" for c in keep_first]
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(q(c) for c in keys)}) DO UPDATE SET {', '.join(sets)}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _merge_daily(daily: dict) -> None:
    _upsert(
        MentionDaily,
        ["query_id", "day", "source_kind", "sentiment"],
        [(*key, *values) for key, values in daily.items()],
        add=["count", "engagement", "reach"],
    )


def _merge_topics(topics: dict) -> None:
    _upsert(
        TopicDaily,
        ["day", "term"],
        [(*key, *values) for key, values in topics.items()],
        add=["count", "negative"],
    )


def _merge_authors(authors: dict) -> None:
    _upsert(
        AuthorDaily,
        ["day", "source_kind", "author_handle"],
        [
            (*key, a["pos"], a["neg"], a["total"], a["inf"], a["name"], a["person_id"])
            for key, a in authors.items()
        ],
        add=["positive", "negative", "total"],
        greatest=("influence",),
        keep_first=("author_name", "person_id"),
    )
    weeks: dict[tuple[dt.date, str, str], list] = {}
    for (day, source, handle), a in authors.items():
        w = weeks.setdefault((week_of(day), source, handle), [0, 0, 0, 0.0])
        w[0] += a["pos"]
        w[1] += a["neg"]
        w[2] += a["total"]
        w[3] = max(w[3], a["inf"])
    _upsert(
        AuthorWeekly,
        ["week", "source_kind", "author_handle"],
        [(*key, *values) for key, values in weeks.items()],
        add=["positive", "negative", "total"],
        greatest=("influence",),
    )
    totals: dict[tuple[str, str], dict] = {}
    for (_day, source, handle), a in authors.items():
        t = totals.setdefault((source, handle), {**a, "pos": 0, "neg": 0, "total": 0, "inf": 0.0})
        t["pos"] += a["pos"]
        t["neg"] += a["neg"]
        t["total"] += a["total"]
        t["inf"] = max(t["inf"], a["inf"])
        t["person_id"] = t["person_id"] or a["person_id"]
    _upsert(
        AuthorTotal,
        ["source_kind", "author_handle"],
        [
            (*key, a["pos"], a["neg"], a["total"], a["inf"], a["name"], a["person_id"])
            for key, a in totals.items()
        ],
        add=["positive", "negative", "total"],
        greatest=("influence",),
        keep_first=("author_name", "person_id"),
    )


def rebuild_author_totals() -> None:
    """Author totals recomputed from the daily author rows (after `rebuild` replaced some)."""
    AuthorTotal.objects.all().delete()
    rows = (
        AuthorDaily.objects.values("source_kind", "author_handle")
        .annotate(
            pos=models.Sum("positive"),
            neg=models.Sum("negative"),
            n=models.Sum("total"),
            inf=models.Max("influence"),
            name=models.Max("author_name"),
            person=models.Max("person_id"),
        )
        .order_by()
        .values_list("source_kind", "author_handle", "pos", "neg", "n", "inf", "name", "person")
    )
    batch: list[AuthorTotal] = []
    for source, handle, pos, neg, n, inf, name, person in rows.iterator(chunk_size=5000):
        batch.append(
            AuthorTotal(
                source_kind=source,
                author_handle=handle,
                positive=pos or 0,
                negative=neg or 0,
                total=n or 0,
                influence=inf or 0.0,
                author_name=name or "",
                person_id=person,
            )
        )
        if len(batch) >= 5000:
            AuthorTotal.objects.bulk_create(batch)
            batch = []
    AuthorTotal.objects.bulk_create(batch)


def rebuild_author_weeks(since: dt.date, until: dt.date) -> None:
    """The weekly author rows of the weeks touching [since, until], again from the daily ones."""
    first, last = week_of(since), week_of(until)
    AuthorWeekly.objects.filter(week__gte=first, week__lte=last).delete()
    days = AuthorDaily.objects.filter(day__gte=first, day__lte=last + dt.timedelta(days=6))
    sum_weeks(days, AuthorWeekly)


def sum_weeks(days: models.QuerySet, weekly: type[models.Model]) -> None:
    """Create the weekly author rows of the daily rows `days` (also the 0007 backfill's,
    with the historical models)."""
    weeks: dict[tuple[dt.date, str, str], list] = {}
    rows = days.order_by().values_list(
        "day", "source_kind", "author_handle", "positive", "negative", "total", "influence"
    )
    for day, source, handle, pos, neg, total, inf in rows.iterator(chunk_size=5000):
        w = weeks.setdefault((week_of(day), source, handle), [0, 0, 0, 0.0])
        w[0] += pos
        w[1] += neg
        w[2] += total
        w[3] = max(w[3], inf or 0.0)
    weekly.objects.bulk_create(  # type: ignore[attr-defined]
        [
            weekly(
                week=week,
                source_kind=source,
                author_handle=handle,
                positive=p,
                negative=n,
                total=t,
                influence=i,
            )
            for (week, source, handle), (p, n, t, i) in weeks.items()
        ],
        batch_size=5000,
    )


def _move_author_count(mention: Mention, day: dt.date, old: str) -> None:
    """The author rollups count positive and negative mentions: a correction moves one."""
    columns = {"positive": "positive", "negative": "negative"}
    changes = {}
    if old in columns:
        changes[columns[old]] = models.F(columns[old]) - 1
    if mention.sentiment in columns:
        changes[columns[mention.sentiment]] = models.F(columns[mention.sentiment]) + 1
    if not changes or not mention.author_handle:
        return
    key = {"source_kind": mention.source_kind, "author_handle": mention.author_handle}
    guard = {f"{columns[old]}__gt": 0} if old in columns else {}
    for model, where in (
        (AuthorDaily, {"day": day}),
        (AuthorWeekly, {"week": week_of(day)}),
        (AuthorTotal, {}),
    ):
        model.objects.filter(**key, **where, **guard).update(**changes)


def sentiment_changed(mention: Mention, old: str) -> None:
    """Move one mention's counts from its old sentiment to its new one (after a correction)."""
    if old == mention.sentiment:
        return
    day = _day(mention.published_at)
    qids = [0, *MentionMatch.objects.filter(mention=mention).values_list("query_id", flat=True)]
    for qid in qids:
        base = MentionDaily.objects.filter(query_id=qid, day=day, source_kind=mention.source_kind)
        old_row = base.filter(sentiment=old).first()
        if old_row and old_row.count:
            old_row.count -= 1
            old_row.engagement = max(0, old_row.engagement - mention.engagement)
            old_row.reach = max(0, old_row.reach - mention.reach)
            old_row.save(update_fields=["count", "engagement", "reach"])
        row, _ = MentionDaily.objects.get_or_create(
            query_id=qid, day=day, source_kind=mention.source_kind, sentiment=mention.sentiment
        )
        row.count += 1
        row.engagement += mention.engagement
        row.reach += mention.reach
        row.save(update_fields=["count", "engagement", "reach"])
    MentionMatch.objects.filter(mention=mention).update(sentiment=mention.sentiment)
    _move_author_count(mention, day, old)


@transaction.atomic
def rebuild(*, since: dt.date, until: dt.date | None = None) -> int:
    """Recompute the rollups of [since, until] from the mentions. Returns mentions read."""
    until = until or timezone.localdate()
    start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min))
    MentionDaily.objects.filter(day__gte=since, day__lte=until).delete()
    TopicDaily.objects.filter(day__gte=since, day__lte=until).delete()
    AuthorDaily.objects.filter(day__gte=since, day__lte=until).delete()
    n = 0
    qs = Mention.objects.filter(published_at__gte=start, published_at__lt=end).order_by("id")
    last = 0
    while True:
        batch = list(qs.filter(id__gt=last)[:2000])
        if not batch:
            break
        hits: dict[int, list[int]] = defaultdict(list)
        for mid, qid in MentionMatch.objects.filter(mention_id__in=[m.pk for m in batch]).values_list(
            "mention_id", "query_id"
        ):
            hits[mid].append(qid)
        for m in batch:
            m.matched_query_ids = hits.get(m.pk, [])  # type: ignore[attr-defined]
        add(batch)
        n += len(batch)
        last = batch[-1].pk
    rebuild_author_weeks(since, until)
    rebuild_author_totals()
    return n
