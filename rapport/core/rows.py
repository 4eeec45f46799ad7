"""Writing many model rows without the ORM's per-value compilation: one prepared INSERT run
with executemany (or INSERT … RETURNING for one row). For batch pipelines (inbox ingest,
listening ingest) where Django's bulk_create spent more time preparing values than the
database spent storing them. No save() hooks or signals run; auto_now fields are stamped as
save() would stamp them."""

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection, connections, models
from django.db.models import Field


def column(field: Field) -> str:
    # The stubs allow None for fields without a column (relations like generic FKs); the
    # concrete fields passed here always have one.
    assert field.column is not None, f"{field.name} has no database column"
    return field.column


# Column types whose Python value the database driver takes as it is: get_db_prep_save on
# them only re-checks the type, and a batch calls it tens of thousands of times. Exact
# types: a subclass may convert (an encrypted field, say).
_AS_IS = {
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.BigIntegerField,
    models.PositiveSmallIntegerField,
    models.BooleanField,
    models.FloatField,
    models.ForeignKey,
}


def row_writer(fields: list[Field], *, add: bool = True) -> Any:
    """A function `values(obj, conn)` turning a model instance into the database values of
    `fields` for an INSERT (`add`) or an UPDATE. Pass the connection itself (`conn_itself()`), not
    the `connection` proxy: its thread-local lookups would be paid for every value."""
    plain, dates, prepared, stamped = [], [], [], []
    for i, f in enumerate(fields):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            stamped.append((i, f))  # stamped as Model.save would (pre_save sets the attribute)
        elif type(f) in _AS_IS:
            plain.append((i, f.attname))
        elif type(f) is models.DateTimeField:
            dates.append((i, f.attname))  # aware datetimes: only the adapter is needed
        else:
            prepared.append((i, f))

    def values(obj: models.Model, conn: Any) -> list[Any]:
        row: list[Any] = [None] * len(fields)
        d = obj.__dict__
        for i, name in plain:
            row[i] = d[name]
        adapt = datetime_adapter(conn)
        for i, name in dates:
            row[i] = adapt(d[name])
        for i, f in prepared:
            row[i] = f.get_db_prep_save(d[f.attname], conn)
        for i, f in stamped:
            row[i] = f.get_db_prep_save(f.pre_save(obj, add), conn)
        return row

    return values


_UTC = dt.UTC


def datetime_adapter(conn: Any) -> Any:
    """`adapt(value)` for DateTimeField values on `conn` (the connection itself): the
    backend's own adapter, with a shortcut for the common case on SQLite (an aware UTC
    datetime, stored as its naive UTC text) when the connection's time zone is UTC. A batch
    adapts several dates per row, and Django's adapter looks up settings and converts
    time zones for each."""
    adapt = conn.ops.adapt_datetimefield_value
    if conn.vendor != "sqlite" or conn.timezone is not _UTC:
        return adapt

    def sqlite_utc(value: Any) -> Any:
        if value is not None and value.tzinfo is _UTC:
            # "…+00:00" without its offset: str() of the naive datetime, as Django stores it.
            return value.isoformat(" ")[:-6]
        return adapt(value)

    return sqlite_utc


def conn_itself() -> Any:
    return connections[connection.alias]


@functools.lru_cache(maxsize=64)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def _plain_driver(conn: Any) -> bool:
    """Whether a statement may go straight to the SQLite driver: connected, no transaction
    marked for rollback, and no execute wrapper or query log (tests and debug pages count
    queries through them) that would miss it."""
    return (
        conn.vendor == "sqlite"
        and conn.connection is not None
        and not conn.needs_rollback
        and not conn.execute_wrappers
        and not conn.queries_logged
    )


def execute_one(conn: Any, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement (written with %s placeholders) on `conn`, the connection itself,
    and give its first row. On SQLite, when nothing watches queries, it goes straight to the
    driver: Django's cursor wrapper (thread checks, the %s → ? rewrite, debug hooks) cost as
    much Python as the statement itself for a webhook's payload insert. Django's error
    translation is kept, so a locked database is still an OperationalError (which the webhook
    views answer 503 to)."""
    if _plain_driver(conn):
        with conn.wrap_database_errors:
            return conn.connection.execute(_qmark(sql), params).fetchone()  # type: ignore[no-any-return]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]


@functools.cache
def insert_sql(
    model: type[models.Model], vendor: str, with_ids: bool = False, ignore_conflicts: bool = False
) -> tuple[str, Any]:
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column(f)) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if ignore_conflicts:
        # Uniqueness only (SQLite and PostgreSQL alike), unlike bulk_create's INSERT OR
        # IGNORE on SQLite, which also drops rows that break NOT NULL or CHECK constraints.
        sql += " ON CONFLICT DO NOTHING"
    return sql, row_writer(fields)


def insert_rows(
    model: type[models.Model], objs: list[Any], *, with_ids: bool = False, ignore_conflicts: bool = False
) -> None:
    """INSERT many rows of `model` with one prepared statement (executemany). Unlike
    bulk_create, it neither compiles the values through the ORM nor reads ids back: for
    rows nothing in the batch refers to by id (messages, channel links, notices). With
    `with_ids` the objects' primary keys are written too (ids given ahead, as the inbox
    ingest's plan gives them); otherwise the database assigns them. `ignore_conflicts`:
    rows that would break a unique constraint are left out."""
    if not objs:
        return
    sql, values = insert_sql(model, connection.vendor, with_ids, ignore_conflicts)
    conn = conn_itself()
    with conn.cursor() as cursor:
        cursor.executemany(sql, [values(obj, conn) for obj in objs])


def insert_one(obj: models.Model) -> None:
    """obj.save() for a new row whose fields are all set (no save hooks, no signals), in one
    INSERT … RETURNING id: the ORM's save compiles the statement anew every time."""
    if not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return
    sql, values = insert_sql(type(obj), connection.vendor)
    conn = conn_itself()
    with conn.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {conn.ops.quote_name(column(obj._meta.pk))}", values(obj, conn))
        obj.pk = cursor.fetchone()[0]
    obj._state.adding, obj._state.db = False, connection.alias
