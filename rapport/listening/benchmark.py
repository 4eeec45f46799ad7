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
