"""Prefix search on folded keys that uses an index on both databases."""

from django.db import connection
from django.db.models import Q

from rapport.core.text import fold, prefix_upper_bound


def prefix_q(field: str, text: str) -> Q:
    key = fold(text)
    if connection.vendor == "postgresql":
        # Django adds a varchar_pattern_ops index for indexed CharFields: LIKE 'x%' uses it,
        # whatever the database's collation.
        return Q(**{f"{field}__startswith": key})
    # SQLite compares with BINARY collation: a range scan on the plain index.
    return Q(**{f"{field}__gte": key, f"{field}__lt": prefix_upper_bound(key)})


def prefix_sql(column: str, text: str) -> tuple[str, list[str]]:
    """prefix_q for plain SQL (core.reads): the same index-friendly condition on `column`."""
    key = fold(text)
    if connection.vendor == "postgresql":
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{column} LIKE %s", [escaped + "%"]
    return f"{column} >= %s AND {column} < %s", [key, prefix_upper_bound(key)]
