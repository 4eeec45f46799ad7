"""Mention ingest benchmark, end to end through `ingest_mentions`: dedup against what is
stored, query matching (three queries), scoring, keyword extraction, author resolution
(a tenth of the authors are known people) and influence, bulk insert and rollups.

Every batch of 1,000 carries 5 % mentions already stored, so dedup does real work. Run it
against a scratch database:

    rapport bench listening --mentions 100000   (runs in a fresh scratch database)
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.utils import timezone

if TYPE_CHECKING:
    # Management commands hand in an OutputWrapper, not a TextIO; all we need is write().
    from _typeshed import SupportsWrite

BATCH = 1000

_TEXTS = [
    "Acme support answered fast, thank you so much #acme",
    "Still waiting for my refund from Acme, three weeks now",
    "How much does Acme Cloud cost for a small team?",
    "Acme is down again?! Unacceptable #acmefail",
    "Comparing Acme and Globex dashboards today",
    "Globex raised prices, moving to Acme next month",
    "Reading the Acme docs about pipelines",
    "I will cancel my Acme subscription if this keeps happening",
]


def run(*, mentions: int, stdout: SupportsWrite[str]) -> dict[str, Any]:
    from rapport.accounts.models import Role, User
    from rapport.listening.ingest import ingest_mentions
    from rapport.listening.models import ListeningQuery, Mention
    from rapport.people.models import Identity, Person

    rng = random.Random(7)
    owner = User.objects.filter(is_active=True).order_by("id").first() or User.objects.create_user(
        username="bench-listening", password=None, role=Role.MANAGER
    )
    for name, text, competitor in (
        ("Acme", "acme OR #acme OR #acmefail", False),
        ("Acme Cloud", '"acme cloud"', False),
        ("Globex", "globex", True),
    ):
        ListeningQuery.objects.get_or_create(
            name=f"bench {name}", defaults={"owner": owner, "text": text, "is_competitor": competitor}
        )
    run_id = f"{time.time_ns():x}"
    known = 500
    if not Identity.objects.filter(kind="x", value="benchuser0").exists():
        people = Person.objects.bulk_create(
            [Person(owner=owner, first_name="Bench", last_name=str(i)) for i in range(known)]
        )
        Identity.objects.bulk_create(
            [Identity(person=p, kind="x", value=f"benchuser{i}") for i, p in enumerate(people)]
        )
    now = timezone.now()
    stored = duplicates = 0
    previous: list[dict[str, Any]] = []
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    produced = 0
    while produced < mentions:
        n = min(BATCH, mentions - produced)
        batch = []
        for i in range(n):
            k = produced + i
            author = rng.randrange(known * 10)
            batch.append(
                {
                    "source_kind": "x",
                    "external_id": f"{run_id}-{k}",
                    "text": rng.choice(_TEXTS),
                    "author_kind": "x",
                    "author_handle": f"benchuser{author}",
                    "author_followers": int(rng.paretovariate(1.2) * 50),
                    "language": "en",
                    "published_at": now - dt.timedelta(minutes=rng.randrange(60 * 24 * 60)),
                    "likes": rng.randrange(20),
                }
            )
        # 5 % repeats of the previous batch: stored already, must be dropped.
        batch += previous[: n // 20]
        result = ingest_mentions(batch, now=now, evaluate_alerts=False)
        stored += result.stored
        duplicates += result.duplicates
        previous = batch[:n]
        produced += n
    wall = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    figures = {
        "mentions": mentions,
        "stored": stored,
        "duplicates_dropped": duplicates,
        "seconds": round(wall, 2),
        "mentions_per_s": round(stored / wall, 1) if wall else None,
        "cpu_mentions_per_s": round(stored / cpu, 1) if cpu else None,
        "total_in_db": Mention.objects.count(),
    }
    stdout.write(
        f"Ingested {stored} mentions ({duplicates} duplicates dropped) in {wall:.2f} s: "
        f"{figures['mentions_per_s']}/s wall, {figures['cpu_mentions_per_s']}/s CPU\n"
    )
    stdout.write(json.dumps(figures) + "\n")
    return figures


def dashboards(
    *, days: Sequence[int] = (30, 60, 90), requests: int = 21, stdout: SupportsWrite[str]
) -> dict[str, Any]:
    """Time the dashboard pages over whatever mentions the database holds (run it on the
    database `rapport bench listening` left behind): for each range, the page, the page
    for one query, and the API, `requests` times each through Django's test client (the
    whole view: selectors, figures, charts, template), after a warm-up and ANALYZE."""
    import statistics

    from django.test import Client

    from rapport.accounts.models import User
    from rapport.bench.httpbench import percentile
    from rapport.core.db import refresh_planner_stats
    from rapport.listening.models import ListeningQuery, Mention

    refresh_planner_stats()
    user = User.objects.filter(is_active=True, role__in=("admin", "manager")).order_by("id").first()
    if user is None:
        raise RuntimeError("No manager or admin in this database; run `rapport bench listening` first.")
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    query = ListeningQuery.objects.order_by("id").first()
    today = timezone.localdate()
    rows: list[dict[str, Any]] = []
    for n in days:
        since = (today - dt.timedelta(days=n - 1)).isoformat()
        pages = {
            f"/listening/ ({n} days)": f"/listening/?since={since}",
            f"/listening/?query ({n} days)": f"/listening/?since={since}&query={query.pk if query else 0}",
            f"GET /api/v1/listening/dashboard ({n} days)": f"/api/v1/listening/dashboard?since={since}",
        }
        for name, url in pages.items():
            times, cpu = [], []
            for i in range(requests + 2):
                start, start_cpu = time.perf_counter(), time.process_time()
                status = client.get(url).status_code
                elapsed = (time.perf_counter() - start) * 1000
                if status != 200:
                    raise RuntimeError(f"{url} answered {status}")
                if i >= 2:  # two warm-up requests
                    times.append(elapsed)
                    # CPU of this process (view, ORM, SQLite in-process): what other load on
                    # a shared machine does not inflate the way it does wall time.
                    cpu.append((time.process_time() - start_cpu) * 1000)
            times.sort()
            cpu.sort()
            rows.append(
                {
                    "page": name,
                    "median_ms": round(statistics.median(times), 1),
                    "p95_ms": round(percentile(times, 95), 1),
                    "cpu_median_ms": round(statistics.median(cpu), 1),
                    "cpu_p95_ms": round(percentile(cpu, 95), 1),
                }
            )
    width = max(len(r["page"]) for r in rows)
    stdout.write(f"{'page'.ljust(width)}  median ms  p95 ms  CPU median  CPU p95\n")
    for r in rows:
        stdout.write(
            f"{r['page'].ljust(width)}  {r['median_ms']:>9}  {r['p95_ms']:>6}"
            f"  {r['cpu_median_ms']:>10}  {r['cpu_p95_ms']:>7}\n"
        )
    figures = {
        "suite": "listening-dashboard",
        "mentions": Mention.objects.count(),
        "requests": requests,
        "pages": rows,
    }
    stdout.write(json.dumps(figures, separators=(",", ":")) + "\n")
    return figures
