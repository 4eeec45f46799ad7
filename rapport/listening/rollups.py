"""Daily rollups kept at ingest, so dashboards over a million mentions read a few hundred
rows: counts per day × query × source × sentiment, topics per day, authors per day.

`add` runs inside the ingest transaction. Increments are read-modify-write on a handful of
rows per batch; two pollers writing the same day at the same instant could both read the old
count, so `rebuild` recomputes any date range from the mentions themselves (run it after
restoring a backup or if figures ever look off)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from rapport.listening.models import AuthorDaily, Mention, MentionDaily, MentionMatch, TopicDaily

TOPICS_PER_MENTION = 8


def _day(when: dt.datetime) -> dt.date:
    return timezone.localtime(when).date() if timezone.is_aware(when) else when.date()


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


def _merge_daily(daily: dict) -> None:
    if not daily:
        return
    days = {k[1] for k in daily}
    qids = {k[0] for k in daily}
    existing = {
        (r.query_id, r.day, r.source_kind, r.sentiment): r
        for r in MentionDaily.objects.filter(day__in=days, query_id__in=qids)
    }
    new, changed = [], []
    for key, (count, engagement, reach) in daily.items():
        row = existing.get(key)
        if row is None:
            new.append(
                MentionDaily(
                    query_id=key[0],
                    day=key[1],
                    source_kind=key[2],
                    sentiment=key[3],
                    count=count,
                    engagement=engagement,
                    reach=reach,
                )
            )
        else:
            row.count += count
            row.engagement += engagement
            row.reach += reach
            changed.append(row)
    MentionDaily.objects.bulk_create(new, batch_size=500)
    MentionDaily.objects.bulk_update(changed, ["count", "engagement", "reach"], batch_size=500)


def _merge_topics(topics: dict) -> None:
    if not topics:
        return
    days = {k[0] for k in topics}
    terms = list({k[1] for k in topics})
    existing: dict[tuple[dt.date, str], TopicDaily] = {}
    for i in range(0, len(terms), 500):
        for r in TopicDaily.objects.filter(day__in=days, term__in=terms[i : i + 500]):
            existing[(r.day, r.term)] = r
    new, changed = [], []
    for key, (count, negative) in topics.items():
        row = existing.get(key)
        if row is None:
            new.append(TopicDaily(day=key[0], term=key[1], count=count, negative=negative))
        else:
            row.count += count
            row.negative += negative
            changed.append(row)
    TopicDaily.objects.bulk_create(new, batch_size=500)
    TopicDaily.objects.bulk_update(changed, ["count", "negative"], batch_size=500)


def _merge_authors(authors: dict) -> None:
    if not authors:
        return
    days = {k[0] for k in authors}
    handles = list({k[2] for k in authors})
    existing: dict[tuple, AuthorDaily] = {}
    for i in range(0, len(handles), 500):
        for r in AuthorDaily.objects.filter(day__in=days, author_handle__in=handles[i : i + 500]):
            existing[(r.day, r.source_kind, r.author_handle)] = r
    new, changed = [], []
    for key, a in authors.items():
        row = existing.get(key)
        if row is None:
            new.append(
                AuthorDaily(
                    day=key[0],
                    source_kind=key[1],
                    author_handle=key[2],
                    author_name=a["name"],
                    person_id=a["person_id"],
                    positive=a["pos"],
                    negative=a["neg"],
                    total=a["total"],
                    influence=a["inf"],
                )
            )
        else:
            row.positive += a["pos"]
            row.negative += a["neg"]
            row.total += a["total"]
            row.influence = max(row.influence, a["inf"])
            row.person_id = row.person_id or a["person_id"]
            changed.append(row)
    AuthorDaily.objects.bulk_create(new, batch_size=500)
    AuthorDaily.objects.bulk_update(
        changed, ["positive", "negative", "total", "influence", "person_id"], batch_size=500
    )


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
    return n
