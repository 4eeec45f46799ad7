import datetime as dt
import random
from collections import defaultdict

import pytest
from django.utils import timezone

from rapport.listening import dashboard, rollups
from rapport.listening.models import AuthorDaily, AuthorTotal, AuthorWeekly, Mention

TODAY = dt.date(2026, 3, 31)


def mention(handle, day, sentiment, influence, source="x"):
    m = Mention(
        source_kind=source,
        author_handle=handle,
        author_name=handle.title(),
        published_at=timezone.make_aware(dt.datetime.combine(day, dt.time(12))),
        sentiment=sentiment,
        influence=influence,
    )
    m.matched_query_ids = []  # type: ignore[attr-defined]
    return m


def brute_force(mentions, since, until, column):
    days = defaultdict(lambda: [0, 0, 0.0])  # (source, handle, day) → pos, neg, max influence
    for m in mentions:
        day = m.published_at.date()
        if since <= day <= until:
            d = days[(m.source_kind, m.author_handle, day)]
            d[0] += m.sentiment == "positive"
            d[1] += m.sentiment == "negative"
            d[2] = max(d[2], m.influence)
    per_author = defaultdict(lambda: [0, 0, 0.0])
    for (source, handle, _), (pos, neg, inf) in days.items():
        if pos or neg:
            a = per_author[(source, handle)]
            a[0], a[1], a[2] = a[0] + pos, a[1] + neg, max(a[2], inf)
    i = 0 if column == "positive" else 1
    ranked = sorted(
        ((k, v) for k, v in per_author.items() if v[i]), key=lambda kv: (-kv[1][i], -kv[1][2], kv[0])
    )
    return [(k[0], k[1], v[i]) for k, v in ranked[:10]]


@pytest.fixture
def random_mentions(monkeypatch):
    # Small chunks so the tests walk several candidate chunks and reach the fallback.
    monkeypatch.setattr(dashboard, "CANDIDATE_CHUNK", 7)
    monkeypatch.setattr(dashboard, "CANDIDATE_BUDGET", 35)
    monkeypatch.setattr(dashboard, "WEEK_CHUNK", 7)
    rng = random.Random(3)
    mentions = []
    for _ in range(3000):
        author = rng.randrange(120)
        # Half the authors spoke mostly long ago: all-time totals mispredict recent ranges.
        age = rng.randrange(90) if author % 2 else rng.randrange(60, 90)
        mentions.append(
            mention(
                f"u{author}",
                TODAY - dt.timedelta(days=age),
                rng.choice(["positive", "negative", "neutral"]),
                float(rng.randrange(5)),
                source=rng.choice(["x", "x", "reddit"]),
            )
        )
    rollups.add(mentions)
    return mentions


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["positive", "negative"])
@pytest.mark.parametrize("days_back", [(0, 89), (0, 59), (0, 6), (60, 89), (70, 71), (200, 210)])
def test_ranking_equals_a_full_count_of_the_range(random_mentions, column, days_back):
    since, until = TODAY - dt.timedelta(days=days_back[1]), TODAY - dt.timedelta(days=days_back[0])
    expected = brute_force(random_mentions, since, until, column)
    i = dashboard._SIGN[column]
    # Each bound alone (None: past its budget), and the dashboard's choice with its fallback.
    by_totals = dashboard._ranked(since, until, column, dashboard._total_candidates(column), 35)
    weeks = dashboard._week_candidates(dashboard._week_bounds(since, until), column)
    by_weeks = dashboard._ranked(since, until, column, weeks, 70, 7)
    for ranked in (by_totals, by_weeks):
        if ranked is not None:
            assert [(r[0], r[1], r[i]) for r in ranked] == expected
    chosen = dashboard._advocates_and_detractors(since, until)[0 if column == "positive" else 1]
    assert [(r[0], r[1], r[i]) for r in chosen] == expected


@pytest.mark.django_db
def test_weekly_bounds_rank_a_short_recent_range_in_a_few_chunks(
    random_mentions, django_assert_max_num_queries
):
    since = TODAY - dt.timedelta(days=6)
    # 2 queries for the first and last day, 1 for the weekly bounds, then one per chunk of 7;
    # grouping the whole range would not be needed.
    with django_assert_max_num_queries(3 + 2 * 12):
        dashboard._advocates_and_detractors(since, TODAY)
    weeks = dashboard._week_candidates(dashboard._week_bounds(since, TODAY), "positive")
    assert dashboard._ranked(since, TODAY, "positive", weeks, 7 * 12, 7) is not None


@pytest.mark.django_db
def test_ranking_reads_few_candidates_when_the_range_covers_the_totals(
    random_mentions, django_assert_max_num_queries
):
    # Ties need a few chunks of 7; the fallback would be 5 chunks × 2 queries + 1.
    with django_assert_max_num_queries(8):
        since = TODAY - dt.timedelta(days=400)
        assert dashboard._ranked(since, TODAY, "positive", dashboard._total_candidates("positive"), 35)


@pytest.mark.django_db
def test_author_totals_are_kept_at_ingest_and_recomputed_by_rebuild():
    day = TODAY - dt.timedelta(days=3)
    rollups.add([mention("ann", day, "positive", 5.0), mention("ann", TODAY, "negative", 9.0)])
    rollups.add([mention("ann", TODAY, "positive", 1.0)])
    total = AuthorTotal.objects.get(author_handle="ann")
    assert (total.positive, total.negative, total.total, total.influence) == (2, 1, 3, 9.0)
    # rebuild reads the mentions table; none are stored here, so the range empties.
    rollups.rebuild(since=TODAY, until=TODAY)
    total = AuthorTotal.objects.get(author_handle="ann")
    assert (total.positive, total.negative, total.total, total.influence) == (1, 0, 1, 5.0)


@pytest.mark.django_db
def test_author_weeks_are_kept_at_ingest_and_recomputed_by_rebuild():
    monday = rollups.week_of(TODAY)
    rollups.add(
        [
            mention("ann", monday, "positive", 5.0),
            mention("ann", monday + dt.timedelta(days=1), "negative", 9.0),
        ]
    )
    rollups.add([mention("ann", monday - dt.timedelta(days=1), "positive", 1.0)])
    weeks = {w.week: (w.positive, w.negative, w.total, w.influence) for w in AuthorWeekly.objects.all()}
    assert weeks == {monday: (1, 1, 2, 9.0), monday - dt.timedelta(days=7): (1, 0, 1, 1.0)}
    # rebuild of one day: that day's rows go (no mentions are stored), the week is summed again
    rollups.rebuild(since=monday, until=monday)
    assert AuthorWeekly.objects.get(week=monday).positive == 0
    assert AuthorWeekly.objects.get(week=monday).negative == 1


@pytest.mark.django_db
def test_a_sentiment_correction_moves_the_author_counts(alice):
    from rapport.listening.actions import mention_correct_sentiment
    from rapport.listening.ingest import ingest_mentions

    ingest_mentions(
        [{"source_kind": "x", "external_id": "1", "text": "acme is great", "author_handle": "ann",
          "published_at": timezone.now()}]
    )  # fmt: skip
    m = Mention.objects.get()
    assert m.sentiment == "positive"
    mention_correct_sentiment(actor=alice, mention=m, label="negative")
    for model in (AuthorDaily, AuthorWeekly, AuthorTotal):
        row = model.objects.get(author_handle="ann")
        assert (row.positive, row.negative) == (0, 1), model
