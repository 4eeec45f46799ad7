"""Reads in plain SQL for the screens people open most (lists, record pages, the board,
search), returning tuples instead of model instances.

Why: measured at 1,000,000 people, compiling one ORM query costs ~0.2 ms of Python and
building a model instance ~10 µs; the same query through a cursor costs ~0.02 ms. A page with
a dozen queries and a hundred instances spent more CPU in the ORM than in the database, and
on two cores every millisecond of CPU is eight milliseconds of waiting at 16 clients.

The statements here are written once per shape (cached by the callers) and only bind values.
They stay portable between SQLite and PostgreSQL: `%s` placeholders, no vendor functions.
Record-level access goes through `visibility_sql`, the SQL twin of `access.visibility_q`
(tests check that both select the same rows for every role), so a raw read cannot forget it.
"""

import datetime as dt
import decimal as _decimal
import functools
import hashlib
import re
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

from django.db import ProgrammingError, connection, models
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.core.pagination import decode_cursor, encode_cursor

M = TypeVar("M", bound=models.Model)


class Access(NamedTuple):
    """A row's access columns, for access.can_see / can_edit on plain-SQL rows."""

    owner_id: int
    team_id: int | None
    visibility: str


def visibility_sql(user: User, alias: str) -> tuple[str, list[Any]]:
    """A WHERE fragment keeping only the rows of table `alias` that `user` may see, and its
    parameters. Mirrors access.visibility_q exactly."""
    if not user.is_authenticated or not user.is_active:
        return "1 = 0", []
    if user.is_admin:
        return "1 = 1", []
    a = alias
    params: list[Any] = [Visibility.EVERYONE.value, user.pk]
    sql = f"{a}.visibility = %s OR {a}.owner_id = %s"
    teams = user.team_ids()
    if teams:
        marks = ", ".join(["%s"] * len(teams))
        if user.role == Role.MANAGER:
            sql += f" OR {a}.team_id IN ({marks})"
            params += teams
        else:
            sql += f" OR ({a}.team_id IN ({marks}) AND {a}.visibility = %s)"
            params += [*teams, Visibility.TEAM.value]
    return f"({sql})", params


def indexed_by(name: str) -> str:
    """An INDEXED BY clause on SQLite, nothing elsewhere. For a partial index the planner
    cannot cost (SQLite keeps one row count per index, so a small "open tasks" or "to review"
    subset looks like the whole table); PostgreSQL's statistics see it."""
    return f" INDEXED BY {name}" if connection.vendor == "sqlite" else ""


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetch_one(sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


# Prepared statements on PostgreSQL, for statements whose plan does not depend on the values
# (index lookups, index walks): there planning can cost more than running (the inbox's
# conversation page at 10M messages: 2.3 ms to plan, 0.6 ms to run). Django binds parameters client-side and leaves psycopg's prepared statements off (for
# connection poolers), so SQL's own PREPARE/EXECUTE is used: the first use of a statement on a
# connection sends "PREPARE …; EXECUTE …" in one round trip, later ones "EXECUTE name(values)".
# After five runs PostgreSQL keeps a generic plan when it costs no more than the custom ones.
# SQLite (which caches its own statements) runs the SQL as is.
_PREPARED: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()
_NAMES: dict[str, str] = {}  # statement name → SQL, for tests and debugging
_PLACEHOLDER = re.compile(r"%[s%]")


@functools.lru_cache(maxsize=512)
def _statement(sql: str) -> tuple[str, str, int]:
    """(name, the body for PREPARE with $1…$n, n) of a statement written with %s placeholders.
    The body's own percent signs are doubled: it travels in a string that psycopg formats."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%%"
        count += 1
        return f"${count}"

    body = _PLACEHOLDER.sub(number, sql)
    name = "rapport_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:24]
    _NAMES[name] = sql
    return name, body, count


def prepared_sql(executed: str) -> str:
    """The SQL behind an "EXECUTE rapport_…(…)" as logged (else `executed` itself)."""
    match = re.match(r"\s*EXECUTE (rapport_[0-9a-f]+)", executed)
    return _NAMES.get(match.group(1), executed) if match else executed


def batch_sql(executed: str) -> list[str]:
    """The SQL of each statement a logged batch (fetch_batch) ran, PREPAREs left out."""
    names = re.findall(r"(?:^|; )EXECUTE (rapport_[0-9a-f]+)", executed)
    return [_NAMES.get(n, n) for n in names] if names else [executed]


class Read(NamedTuple):
    """One statement of a batch (fetch_batch)."""

    sql: str
    params: Sequence[Any] = ()
    # False: sent as it is and planned each time, for a statement whose best plan depends on
    # its values (a text search).
    prepared: bool = True


def fetch_prepared(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """fetch, as a prepared statement on PostgreSQL (see above)."""
    return fetch_batch([Read(sql, params)])[0]


def fetch_batch(statements: Sequence[Read]) -> list[list[tuple[Any, ...]]]:
    """The rows of each statement, in one round trip on PostgreSQL: "EXECUTE a(…); EXECUTE
    b(…)" (with a PREPARE before each one this connection has not prepared yet), whose result
    sets are read one after the other. Each round trip cost ~0.1–0.2 ms of CPU on each side
    (Django's cursor, psycopg, the server's protocol handling), as much as running an indexed
    read; independent reads of a page go together. SQLite (in-process, no round trips) runs
    them one by one."""
    if connection.vendor != "postgresql":
        return [fetch(s.sql, s.params) for s in statements]
    with connection.cursor() as cursor:
        raw = connection.connection
        known = _PREPARED.get(raw)
        if known is None:
            known = _PREPARED[raw] = set()
        for attempt in range(2):
            parts: list[str] = []
            params: list[Any] = []
            results: list[bool] = []  # per statement sent: whether it returns rows for the caller
            new: set[str] = set()
            for s in statements:
                if not s.prepared:
                    parts.append(s.sql)
                    params += s.params
                    results.append(True)
                    continue
                name, body, count = _statement(s.sql)
                if count != len(s.params):
                    raise ValueError(f"{count} placeholders, {len(s.params)} parameters")
                if name not in known and name not in new:
                    parts.append(f"PREPARE {name} AS {body}")
                    results.append(False)
                    new.add(name)
                parts.append(f"EXECUTE {name}({marks(s.params)})" if s.params else f"EXECUTE {name}")
                params += s.params
                results.append(True)
            try:
                cursor.execute("; ".join(parts), params)
            except ProgrammingError as exc:
                # Deallocated behind our back (DISCARD ALL, a pooler: 26000): none we knew of
                # is left. Or prepared by a batch that failed further on (a PREPARE outlives
                # the error: 42P05): those we knew of are still there, so forgetting them
                # would make every later PREPARE of theirs fail too. Outside a transaction
                # the error has spoilt, start afresh from a clean slate.
                state = getattr(exc.__cause__, "sqlstate", None)
                if attempt or state not in ("26000", "42P05"):
                    raise
                if state == "26000":
                    known.clear()
                if connection.in_atomic_block:
                    raise
                known.clear()
                cursor.execute("DEALLOCATE ALL")
                continue
            # A prepared statement outlives a rolled-back transaction: known from here on.
            known.update(new)
            out = []
            for i, wanted in enumerate(results):
                if i:
                    cursor.nextset()
                if wanted:
                    out.append(cursor.fetchall())
            return out
    raise AssertionError("unreachable")  # the loop returns or raises


def fetch_one_prepared(sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    rows = fetch_prepared(sql, params)
    return rows[0] if rows else None


def marks(values: Sequence[Any]) -> str:
    """Placeholders for an IN list; callers never pass an empty one."""
    return ", ".join(["%s"] * len(values))


def db_datetime(value: dt.datetime) -> Any:
    """A datetime as a parameter the way the ORM binds it (SQLite stores naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def aware(value: Any) -> dt.datetime | None:
    """A datetime column as the ORM would return it: SQLite's cursor gives naive UTC (Django's
    converter parses the text), PostgreSQL's an aware one."""
    if value is None:
        return None
    if isinstance(value, str):  # an expression column SQLite could not type
        value = dt.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        return value.replace(tzinfo=dt.UTC)
    return value


def as_bool(value: Any) -> bool:
    return bool(value)


def _cursor_type(model: type[models.Model], name: str) -> type:
    """The Python type a cursor value for `model`'s field `name` must have."""
    field = model._meta.get_field(name)
    if isinstance(field, models.DateTimeField):
        return dt.datetime
    if isinstance(field, models.DecimalField):
        return _decimal.Decimal
    if isinstance(field, models.IntegerField | models.AutoField | models.ForeignKey):
        return int
    return str


def keyset_sql(
    order: list[str], alias: str, cursor: str | None, model: type[models.Model]
) -> tuple[str, list[Any]]:
    """The WHERE fragment for the rows of `model` (as `alias`) after `cursor` in `order` (like
    ["sort_key", "id"] or ["-created_at", "-id"]): the same condition core.pagination.keyset_page
    builds, with the redundant bound on the first key that starts the index scan at the
    cursor. Each cursor value must have its field's type."""
    if not cursor:
        return "", []
    values = decode_cursor(cursor)
    if len(values) != len(order):
        raise ActionError("The page cursor is not valid.", {"cursor": ["Invalid cursor."]})
    for name, value in zip(order, values, strict=True):
        if not isinstance(value, _cursor_type(model, name.lstrip("-"))) or isinstance(value, bool):
            # A hand-made cursor with a text where a date belongs would be a database error.
            raise ActionError("The page cursor is not valid.", {"cursor": ["Invalid cursor."]})
    values = [db_datetime(v) if isinstance(v, dt.datetime) else v for v in values]
    cols = [f"{alias}.{name.lstrip('-')}" for name in order]
    ops = ["<" if name.startswith("-") else ">" for name in order]
    alternatives, params = [], []
    for i in range(len(order)):
        parts = [f"{cols[j]} = %s" for j in range(i)] + [f"{cols[i]} {ops[i]} %s"]
        alternatives.append("(" + " AND ".join(parts) + ")")
        params += [*values[:i], values[i]]
    bound = f"{cols[0]} {ops[0]}= %s"
    return f"{bound} AND ({' OR '.join(alternatives)})", [values[0], *params]


def order_sql(order: list[str], alias: str) -> str:
    return ", ".join(f"{alias}.{n.lstrip('-')} {'DESC' if n.startswith('-') else 'ASC'}" for n in order)


def next_cursor(last: Any, order: list[str]) -> str:
    return encode_cursor([getattr(last, n.lstrip("-")) for n in order])


_FLOAT_CONTEXT = _decimal.Context(prec=15)  # what Django's SQLite backend converts REALs with
_QUANTA = {places: _decimal.Decimal(1).scaleb(-places) for places in range(10)}


def decimal(value: Any, places: int = 2) -> _decimal.Decimal | None:
    """A decimal column as the ORM would return it: SQLite's cursor gives an int or a float
    (NUMERIC affinity), PostgreSQL's a Decimal."""
    if value is None:
        return None
    quantum = _QUANTA.get(places) or _decimal.Decimal(1).scaleb(-places)
    if isinstance(value, float):
        return _FLOAT_CONTEXT.create_decimal_from_float(value).quantize(quantum)
    if isinstance(value, int):
        return _decimal.Decimal(value).quantize(quantum)
    return (value if isinstance(value, _decimal.Decimal) else _decimal.Decimal(value)).quantize(quantum)


def decimal_sum(value: Any) -> _decimal.Decimal:
    """A SUM() as a Decimal, not rounded yet (SQLite sums decimal columns as floats)."""
    if value is None:
        return _decimal.Decimal("0")
    if isinstance(value, float):
        return _FLOAT_CONTEXT.create_decimal_from_float(value)
    return _decimal.Decimal(value)


@functools.cache
def _model_select(model: type[models.Model]) -> tuple[str, list[str], list[tuple[int, Any]]]:
    fields = list(model._meta.concrete_fields)
    table = model._meta.db_table
    cols = ", ".join(f"{table}.{f.column}" for f in fields)
    convert: list[tuple[int, Any]] = []
    for i, f in enumerate(fields):
        if isinstance(f, models.DateTimeField):
            convert.append((i, aware))
        elif isinstance(f, models.DecimalField):
            convert.append((i, functools.partial(decimal, places=f.decimal_places)))
        elif isinstance(f, models.BooleanField):
            convert.append((i, bool))
        elif hasattr(f, "from_db_value"):  # JSON, encrypted fields: the field's own converter
            convert.append((i, functools.partial(_from_db, f)))
    return f"SELECT {cols} FROM {table}", [f.attname for f in fields], convert  # noqa: S608


def _from_db(field: Any, value: Any) -> Any:
    return field.from_db_value(value, None, connection)


def instances(model: type[M], tail: str = "", params: Sequence[Any] = ()) -> list[M]:
    """Whole model instances from plain SQL: `tail` is what follows `FROM <table>` (joins,
    WHERE, ORDER BY; qualify columns with the table's name). Every concrete column is read
    and converted as the ORM would, so the instances behave like the ORM's (saving them
    included); related objects are not loaded — see `attach`."""
    select, names, convert = _model_select(model)
    out = []
    for row in fetch(f"{select} {tail}", params):
        values = list(row)
        for i, fn in convert:
            if values[i] is not None:
                values[i] = fn(values[i])
        out.append(model.from_db(connection.alias, names, values))
    return out


def in_model_order(model: type[models.Model], attnames: Sequence[str]) -> tuple[str, ...]:
    """`attnames` in the order of the model's concrete fields: Model.from_db with a subset of
    columns (a deferred instance) expects its values in that order."""
    position = {f.attname: i for i, f in enumerate(model._meta.concrete_fields)}
    return tuple(sorted(attnames, key=position.__getitem__))


def attach(objs: Sequence[models.Model], field_name: str) -> None:
    """Load the objects a foreign key `field_name` of `objs` points to, in one query, and
    cache them on each object as select_related would."""
    if not objs:
        return
    field = objs[0]._meta.get_field(field_name)
    assert isinstance(field, models.ForeignKey)
    ids = list({getattr(o, field.attname) for o in objs} - {None})
    related = field.related_model
    assert isinstance(related, type)
    table = related._meta.db_table
    found = {r.pk: r for r in instances(related, f"WHERE {table}.id IN ({marks(ids)})", ids)} if ids else {}
    for o in objs:
        field.set_cached_value(o, found.get(getattr(o, field.attname)))
