"""Keeping the query planner informed.

SQLite chooses indexes from the statistics `ANALYZE` stores; without them (a new index, a
bulk load) it guesses, and at a million rows a wrong guess turns a 20 ms page into 200 ms
(the pipeline board picked the covering sums index and sorted 25,000 deals). So statistics
are refreshed after migrations, after bulk loads (seed, large imports) and once a day by
the scheduler. PostgreSQL's autovacuum does this by itself, but an explicit ANALYZE after a
bulk load saves the minutes until it notices."""

import logging

from django.db import connection

log = logging.getLogger("rapport.db")


def refresh_planner_stats() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log.info("planner statistics refreshed (%s)", connection.vendor)
