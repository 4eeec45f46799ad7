"""The timeline: every activity on a person, an organisation or a deal that the user may see."""

import functools
import re
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL

from rapport.accounts.models import User
from rapport.activities.models import Activity, ActivityKind
from rapport.core import reads
from rapport.core.access import get_visible, visible
from rapport.core.pagination import Page, keyset_page


def activities_visible(user: User) -> QuerySet[Activity]:
    return visible(Activity, user)


WORD = re.compile(r"\w+")
SEARCH_CANDIDATES = 500


def matching_ids_sql(text: str, candidates: int = SEARCH_CANDIDATES) -> tuple[str, list[Any]] | None:
    """A statement selecting the ids of the newest `candidates` activities whose subject has
    words starting with each word of `text`, through the word index of migration 0002; None
    when `text` has no words or the database has no such index."""
    words = [w.lower() for w in WORD.findall(text)][:8]
    if not words:
        return None
    if connection.vendor == "sqlite":
        # Each word quoted (so AND/OR/NEAR are plain words) and marked as a prefix.
        match = " ".join(f'"{w}"*' for w in words)
        return (
            "SELECT rowid FROM activities_activity_fts WHERE activities_activity_fts MATCH %s "
            "ORDER BY rowid DESC LIMIT %s",
            [match, candidates],
        )
    if connection.vendor == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)  # \w+ words cannot carry tsquery syntax
        return (
            "SELECT id FROM activities_activity WHERE to_tsvector('simple', subject) @@ "
            "to_tsquery('simple', %s) ORDER BY id DESC LIMIT %s",
            [query, candidates],
        )
    return None


def activities_matching(user: User, text: str, candidates: int = SEARCH_CANDIDATES) -> QuerySet[Activity]:
    """Visible activities whose subject has words starting with each word of `text` ("mar
    call" finds "Call about the March invoice"), through the word index of migration 0002.

    The index hands back the newest `candidates` matches by id; visibility and the recency
    order apply to those, so a common word costs the same as a rare one."""
    words = [w.lower() for w in WORD.findall(text)][:8]
    if not words:
        return Activity.objects.none()
    found = matching_ids_sql(text, candidates)
    if found is None:  # another database: a bounded substring scan of the newest activities
        recent = Activity.objects.order_by("-id").values("id")[:candidates]
        qs = activities_visible(user).filter(id__in=recent)
        for w in words:
            qs = qs.filter(subject__icontains=w)
        return qs
    sql, params = found
    ids = RawSQL(sql, params)  # noqa: S611 — fixed SQL, user text is a parameter
    return activities_visible(user).filter(id__in=ids)


_ACCESS = ("owner_id", "team_id", "visibility")


def timeline(
    *,
    user: User,
    person_id: int | None = None,
    organisation_id: int | None = None,
    deal_id: int | None = None,
    kind: str = "",
    cursor: str | None = None,
    limit: int = 30,
) -> Page[Activity]:
    """A record's activities, newest first, as whole instances (the API). A record's page reads
    the same rows through timeline_page."""
    qs = activities_visible(user)
    if person_id is not None:
        qs = qs.filter(person_id=person_id)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    if deal_id is not None:
        qs = qs.filter(deal_id=deal_id)
    if kind in ActivityKind.values:
        qs = qs.filter(kind=kind)
    qs = qs.select_related("owner", "person", "deal", "assignee", "organisation")
    return keyset_page(qs, ["-occurred_at", "-id"], cursor, limit)


# The timeline on a record's page in plain SQL: the activity's shown columns and, per
# related record, what its name and the access check need. Each group becomes a deferred
# model instance, like .only() with select_related, without compiling the query.
_TL_ORDER = ["-occurred_at", "-id"]


@functools.cache
def _timeline_select() -> tuple[str, tuple[str, ...], tuple[tuple[str, type[Model], tuple[str, ...]], ...]]:
    from rapport.accounts.models import User as UserModel
    from rapport.people.models import Organisation, Person
    from rapport.sales.models import Deal

    names = ("owner_id", "team_id", "visibility")
    own = reads.in_model_order(
        Activity,
        ("id", "kind", "subject", "body", "occurred_at", "call_direction", "call_duration_s", "call_outcome",
         "due_at", "done_at", "person_id", "deal_id", "organisation_id", "assignee_id", *names),
    )  # fmt: skip
    related_spec: list[tuple[str, type[Model], str, tuple[str, ...]]] = [
        ("owner", UserModel, "ow", ("id", "username", "first_name", "last_name")),
        ("person", Person, "pe", ("id", "first_name", "last_name", *names)),
        ("deal", Deal, "de", ("id", "name", *names)),
        ("organisation", Organisation, "og", ("id", "name", *names)),
        ("assignee", UserModel, "asg", ("id", "username", "first_name", "last_name")),
    ]
    related = tuple(
        (attr, model, al, reads.in_model_order(model, cols)) for attr, model, al, cols in related_spec
    )
    select = (
        "SELECT "
        + ", ".join([f"a.{c}" for c in own] + [f"{al}.{c}" for _, _, al, cols in related for c in cols])
        + " FROM activities_activity a{index} "
        + " ".join(
            f"{'INNER' if attr == 'owner' else 'LEFT OUTER'} JOIN {model._meta.db_table} {al} ON {al}.id = a.{attr}_id"
            for attr, model, al, _ in related
        )
    )
    return select, own, tuple((attr, model, cols) for attr, model, _, cols in related)


def timeline_page(
    *,
    user: User,
    person_id: int | None = None,
    organisation_id: int | None = None,
    deal_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page[Activity]:
    """The timeline on a record's page (or, with no record named, everything the user may
    see): the rows, order and cursors of `timeline()` (tests compare the two), read in plain
    SQL — compiling the ORM query with its five joins was the costliest part of a person's
    page."""
    return activity_rows(
        user=user,
        person_id=person_id,
        organisation_id=organisation_id,
        deal_id=deal_id,
        cursor=cursor,
        limit=limit,
    )


def activity_rows(
    *,
    user: User,
    person_id: int | None = None,
    organisation_id: int | None = None,
    deal_id: int | None = None,
    kind: str = "",
    owner_id: int | None = None,
    open_tasks: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Activity]:
    """Visible activities newest first, in plain SQL: of one record (a timeline), of one kind,
    one owner's, or only open tasks (the activities list)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("person_id", person_id),
        ("organisation_id", organisation_id),
        ("deal_id", deal_id),
        ("owner_id", owner_id),
    ):
        if value is not None:
            where.append(f"a.{column} = %s")
            params.append(value)
    if kind in ActivityKind.values:
        where.append("a.kind = %s")
        params.append(kind)
    if open_tasks:
        # Literals, as the partial index activity_open_tasks states them (SQLite uses a
        # partial index only when the query repeats its condition; bound values do not).
        where += ["a.kind = 'task'", "a.done_at IS NULL"]
    after, after_params = reads.keyset_sql(_TL_ORDER, "a", cursor, Activity)
    if after:
        where.append(after)
        params += after_params
    limit = max(1, min(int(limit), 200))
    index = reads.indexed_by("activity_open_tasks") if open_tasks else ""
    rows = _activity_rows(user, where, params, _TL_ORDER, limit + 1, index)
    items = rows[:limit]
    return Page(
        items=items, next_cursor=reads.next_cursor(items[-1], _TL_ORDER) if len(rows) > limit else None
    )


def open_task_rows(*, user: User, limit: int = 20) -> list[Activity]:
    """open_tasks in plain SQL, for the home page: the user's open tasks, soonest due first."""
    return _activity_rows(
        user,
        ["a.kind = %s", "a.assignee_id = %s", "a.done_at IS NULL"],
        [ActivityKind.TASK.value, user.pk],
        ["due_at", "id"],
        limit,
    )


def _activity_rows(
    user: User, where: list[str], params: list[Any], order: list[str], limit: int, index: str = ""
) -> list[Activity]:
    """Visible activities matching `where`, as deferred instances with their owner, person,
    deal, organisation and assignee attached (see _timeline_select); `index`: see
    reads.indexed_by."""
    select, own, related = _timeline_select()
    select = select.replace("{index}", index)
    vis, vis_params = reads.visibility_sql(user, "a")
    rows = reads.fetch(
        f"{select} WHERE {' AND '.join([vis, *where])} ORDER BY {reads.order_sql(order, 'a')} LIMIT %s",  # noqa: S608
        [*vis_params, *params, limit],
    )
    alias = connection.alias
    items = []
    n = len(own)
    dates = [own.index(c) for c in ("occurred_at", "due_at", "done_at")]
    for row in rows:
        values = list(row[:n])
        for i in dates:
            values[i] = reads.aware(values[i])
        activity = Activity.from_db(alias, own, values)
        at = n
        for attr, model, cols in related:
            part = row[at : at + len(cols)]
            at += len(cols)
            obj = model.from_db(alias, cols, list(part)) if part[cols.index("id")] is not None else None
            Activity._meta.get_field(attr).set_cached_value(activity, obj)  # type: ignore[union-attr]
        items.append(activity)
    return items


def activity_detail(*, user: User, activity_id: Any) -> Activity:
    return get_visible(
        Activity,
        user,
        activity_id,
        activities_visible(user).select_related("person", "organisation", "deal", "owner"),
    )


def open_tasks(*, user: User, limit: int = 20) -> list[Activity]:
    return list(
        activities_visible(user)
        .filter(kind=ActivityKind.TASK, assignee=user, done_at__isnull=True)
        .select_related("person", "deal", "organisation")
        .order_by("due_at", "id")[:limit]
    )
