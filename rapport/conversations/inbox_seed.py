"""Bulk seeding for the inbox read benchmark (`rapport bench inbox`): M messages in about M/10
conversations, generated inside the database by INSERT … SELECT over a number series, so
10,000,000 messages on PostgreSQL take minutes, not hours, and SQLite needs no Python loop.

Every value is a function of the conversation's index and the seed (a multiplicative hash
stands in for a random generator), so the same seed, people and day give the same rows on
both databases. Conversations spread over a year, newest last; those of the last two weeks
are mostly open, older ones mostly resolved or closed, as in a working inbox. Four channels
belong to North (the team of the agent the benchmark logs in as), one to South."""

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from rapport.channels.models import Channel
from rapport.conversations.models import Conversation, Message

# (kind, how the customer is addressed on it, team name)
CHANNELS = [
    ("email", "email", "North"),
    ("whatsapp", "phone", "North"),
    ("sms", "phone", "North"),
    ("chat", "email", "North"),
    ("x", "handle", "South"),
]
TOPICS = [
    "Order {n} arrived damaged",
    "Question about invoice {n}",
    "Delivery date for order {n}",
    "Cannot log in to my account",
    "Refund for order {n}",
    "Upgrade to the premium plan",
    "Change of delivery address",
    "Thank you for the quick help",
]
PREFIX = "bulk-"
CHUNK = 100_000  # conversations per statement and transaction: an interrupted seed keeps whole ones
SPAN = 365 * 86400


class SeedRefused(Exception):
    pass


def _is_app_database() -> bool:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db.get("NAME") or "")
        return bool(name) and Path(name).resolve() == (Path(settings.VAR_DIR) / "rapport.sqlite3").resolve()
    # On PostgreSQL: a database the benchmark created for itself, or a test run's database.
    return not str(db.get("NAME") or "").startswith(("rapport_bench", "test_"))


def _h(expr: str, salt: int, mod: int) -> str:
    """A pseudo-random integer in [0, mod) from an integer SQL expression. The square makes it
    non-linear, so two salts on the same row are not just shifted copies of one another; every
    intermediate stays below 2**63 for the indexes used here."""
    y = f"(((({expr}) + 1) * {2654435761 + 2 * salt} + {salt}) % 2147483647)"
    return f"(({y} * {y} + {salt}) % 2147483647 % {mod})"


def _pick(h: str, weighted: list[tuple[str, int]]) -> str:
    """CASE choosing one SQL literal/expression by weight from a hash in [0, sum(weights))."""
    out, edge = [], 0
    for value, weight in weighted[:-1]:
        edge += weight
        out.append(f"WHEN {h} < {edge} THEN {value}")
    return f"(CASE {' '.join(out)} ELSE {weighted[-1][0]} END)"


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Sql:
    """The vendor-specific pieces: a number series and epoch seconds → stored datetime."""

    def __init__(self) -> None:
        self.pg = connection.vendor == "postgresql"

    def series(self, name: str, start: str, stop: str) -> str:
        if self.pg:
            return f"generate_series({start}::bigint, {stop}::bigint) AS {name}(i)"
        return (
            f"(WITH RECURSIVE s(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM s WHERE i < {stop}) "
            f"SELECT i FROM s) AS {name}"
        )

    def ts(self, epoch: str) -> str:
        # Django keeps naive UTC text on SQLite ("YYYY-MM-DD HH:MM:SS" parses back fine).
        return f"to_timestamp({epoch})" if self.pg else f"datetime({epoch}, 'unixepoch')"


def _insert_select(
    model: type[models.Model], exprs: dict[str, str], source: str, params: list[Any] | None = None
) -> int:
    """INSERT INTO model's table (given columns, then every other column at its model default)
    SELECT the given SQL expressions FROM source. Returns the row count."""
    qn = connection.ops.quote_name
    columns: list[str] = []
    values: list[str] = []
    args: list[Any] = []
    for f in model._meta.concrete_fields:
        if f.attname in exprs:
            columns.append(str(f.column))
            values.append(exprs[f.attname].replace("%", "%%"))
        elif not f.primary_key:
            columns.append(str(f.column))
            values.append("%s")
            args.append(f.get_db_prep_save(f.get_default(), connection))
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "  # noqa: S608 - our own SQL
        f"SELECT {', '.join(values)} FROM {source.replace('%', '%%')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, args + (params or []))
        return cursor.rowcount


def seed_inbox(
    *,
    messages: int,
    seed: int = 1,
    today: dt.date | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Append the benchmark's conversations and messages to the configured scratch database.
    People come from an earlier `rapport seed --users` run; the demo users are created if missing."""
    from rapport.bench.seed import SeedError, _Sqlite, ensure_demo_users
    from rapport.people.models import Person

    if messages < 1:
        raise SeedError("messages must be at least 1.")
    if _is_app_database():
        raise SeedError(
            "Refusing to bulk-seed this database: point DATABASE_URL at a benchmark scratch database."
        )
    say = progress or (lambda msg: None)
    started = time.monotonic()
    sql = _Sql()
    users = ensure_demo_users()
    agents = [users["maria"].pk, users["sven"].pk, users["mona"].pk]
    south_agent = users["sam"].pk
    teams = {t.name: t for u in users.values() for t in u.teams.all()}
    channels = []
    for kind, author_kind, team in CHANNELS:
        channel, _ = Channel.objects.get_or_create(
            kind=kind, name=f"Bulk {kind}", defaults={"team": teams[team], "settings": {"bench": True}}
        )
        channels.append((channel.pk, author_kind, channel.team_id))

    qn = connection.ops.quote_name
    no_triggers = False
    people_table = qn(Person._meta.db_table)
    conv_table = qn(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        # People by rank, so a hash picks one whatever gaps the ids have.
        cursor.execute("DROP TABLE IF EXISTS bench_people")
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_people (n INTEGER PRIMARY KEY, person_id BIGINT NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO bench_people (n, person_id) SELECT row_number() OVER (ORDER BY id) - 1, id "  # noqa: S608
            f"FROM {people_table} WHERE merged_into_id IS NULL"
        )
        cursor.execute("SELECT count(*) FROM bench_people")
        n_people = cursor.fetchone()[0]
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {conv_table}")  # noqa: S608
        conv_base = cursor.fetchone()[0] + 1
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {qn(Message._meta.db_table)}")  # noqa: S608
        msg_base = cursor.fetchone()[0] + 1
        if sql.pg:
            # A scratch database built in one go: skip the WAL flush on every commit and, when
            # the role may (superusers only), the per-row foreign-key triggers: the rows are
            # consistent by construction.
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cursor.fetchone()[0]:
                cursor.execute("SET session_replication_role = replica")
                no_triggers = True
    if not n_people:
        raise SeedError("There are no people: run `rapport seed --people N --users` first.")

    n_conv = max(1, messages // 10)
    base, extra = divmod(messages, n_conv)
    now = int(dt.datetime.combine(today or timezone.localdate(), dt.time(12, 0), tzinfo=dt.UTC).timestamp())
    s = seed * 7919

    def per_conversation(i: str) -> dict[str, str]:
        """SQL for the values of the conversation with 0-based index `i` (an SQL expression)."""
        v: dict[str, str] = {}
        v["size"] = f"({base} + CASE WHEN {i} < {extra} THEN 1 ELSE 0 END)"
        v["first_msg"] = f"({msg_base} + {i} * {base} + CASE WHEN {i} < {extra} THEN {i} ELSE {extra} END)"
        age = f"(({n_conv} - {i}) * {SPAN} / {n_conv} + {_h(i, s + 1, 3600)})"
        v["last"] = last = f"({now} - {age})"
        v["created"] = created = f"({last} - 600 - {_h(i, s + 2, 5 * 86400 - 600)})"
        v["step"] = f"(({last} - {created}) / CASE WHEN {v['size']} > 1 THEN {v['size']} - 1 ELSE 1 END)"
        recent = f"({age} < {14 * 86400})"
        hs = _h(i, s + 3, 10)
        st_recent = _pick(hs, [("'new'", 3), ("'open'", 4), ("'waiting'", 2), ("'resolved'", 1)])
        st_old = _pick(hs, [("'resolved'", 6), ("'closed'", 3), ("'open'", 1)])
        v["status"] = f"(CASE WHEN {recent} THEN {st_recent} ELSE {st_old} END)"
        v["open"] = f"({v['status']} IN ('new', 'open', 'waiting'))"
        ch = _h(i, s + 4, len(channels))
        v["channel"] = _pick(ch, [(str(pk), 1) for pk, _, _ in channels])
        v["team"] = _pick(ch, [(str(team or "NULL"), 1) for _, _, team in channels])
        v["author_kind"] = _pick(ch, [(_q(a), 1) for _, a, _ in channels])
        south = _pick(ch, [("1" if team == teams["South"].pk else "0", 1) for _, _, team in channels])
        ha = _h(i, s + 5, 10)
        north_agent = _pick(ha, [*((str(a), w) for a, w in zip(agents, [3, 3, 1], strict=True)), ("NULL", 3)])
        south_agent_pick = _pick(ha, [(str(south_agent), 6), ("NULL", 4)])
        v["assignee"] = (
            f"(CASE WHEN {v['status']} = 'new' THEN NULL WHEN {south} = 1 THEN {south_agent_pick} "
            f"ELSE {north_agent} END)"
        )
        v["priority"] = _pick(
            _h(i, s + 6, 11), [("'low'", 2), ("'normal'", 6), ("'high'", 2), ("'urgent'", 1)]
        )
        number = f"(10000 + {_h(i, s + 7, 90000)})"
        v["subject"] = _pick(
            _h(i, s + 8, len(TOPICS)),
            [
                (" || ".join(_q(p) if k % 2 == 0 else number for k, p in enumerate(t.split("{n}"))), 1)
                for t in TOPICS
            ],
        )
        v["person"] = f"(SELECT person_id FROM bench_people WHERE n = {_h(i, s + 9, n_people)})"
        # Open conversations carry SLA clocks: most on time, some at risk, some breached.
        sla = _pick(_h(i, s + 10, 20), [("'ok'", 16), ("'at_risk'", 2), ("'breached'", 2)])
        v["sla"] = f"(CASE WHEN {v['open']} THEN {sla} ELSE 'none' END)"
        return v

    c = per_conversation("i")
    size, step, created, last = c["size"], c["step"], c["created"], c["last"]
    conv_exprs = {
        "id": f"{conv_base} + i",
        "subject": c["subject"],
        "status": c["status"],
        "priority": c["priority"],
        "assignee_id": c["assignee"],
        "team_id": c["team"],
        "person_id": c["person"],
        "reply_channel_id": c["channel"],
        "sla_state": c["sla"],
        "sla_first_response_due": f"CASE WHEN {c['open']} THEN {sql.ts(f'{last} + 7200')} END",
        "first_response_at": f"CASE WHEN {size} > 1 THEN {sql.ts(f'{created} + {step}')} END",
        "resolved_at": f"CASE WHEN NOT {c['open']} THEN {sql.ts(last)} END",
        "last_message_at": sql.ts(last),
        # The last message with an even position (inbound ones are 0, 2, 4…).
        "last_inbound_at": sql.ts(f"{created} + {step} * (({size} - 1) - ({size} - 1) % 2)"),
        "created_at": sql.ts(created),
        "updated_at": sql.ts(last),
    }
    # Messages: conversation row c × k in [0, size); inbound and outbound alternate.
    m = per_conversation(f"(c.id - {conv_base})")
    inbound = "(k.i % 2 = 0)"
    author_value = (
        f"(CASE {m['author_kind']} WHEN 'email' THEN 'customer' || c.person_id || '@example.com' "
        f"WHEN 'phone' THEN '+4470' || (10000000 + c.person_id) ELSE '@customer' || c.person_id END)"
    )
    at = f"{m['created']} + {m['step']} * k.i"
    msg_exprs = {
        "id": f"{m['first_msg']} + k.i",
        "conversation_id": "c.id",
        "direction": f"CASE WHEN {inbound} THEN 'inbound' ELSE 'outbound' END",
        "channel_id": "c.reply_channel_id",
        "external_id": f"'{PREFIX}' || ({m['first_msg']} + k.i)",
        "thread_id": f"'{PREFIX}t' || c.id",
        "author_kind": f"CASE WHEN {inbound} THEN {m['author_kind']} ELSE '' END",
        "author_value": f"CASE WHEN {inbound} THEN {author_value} ELSE '' END",
        "author_name": f"CASE WHEN {inbound} THEN 'Customer ' || c.person_id ELSE '' END",
        "person_id": f"CASE WHEN {inbound} THEN c.person_id END",
        "author_user_id": f"CASE WHEN {inbound} THEN NULL ELSE coalesce(c.assignee_id, {agents[0]}) END",
        "subject": "CASE WHEN k.i = 0 THEN c.subject ELSE '' END",
        "text": (
            f"c.subject || '. Message ' || (k.i + 1) || ' of ' || {m['size']} || ' in this conversation, "
            f"about case ' || (100000 + {_h('c.id * 16 + k.i', s + 11, 900000)}) || '.'"
        ),
        "sent_at": f"CASE WHEN {inbound} THEN NULL ELSE {sql.ts(at)} END",
        "received_at": sql.ts(at),
        "delivery_status": f"CASE WHEN {inbound} THEN 'received' ELSE 'delivered' END",
    }
    links = Conversation.channels.through
    n_done = m_done = 0
    with _Sqlite():
        for lo in range(0, n_conv, CHUNK):
            hi = min(n_conv, lo + CHUNK) - 1
            with transaction.atomic():
                n_done += _insert_select(Conversation, conv_exprs, sql.series("g", str(lo), str(hi)))
                m_done += _insert_select(
                    Message,
                    msg_exprs,
                    f"{conv_table} c CROSS JOIN {sql.series('k', '0', str(base))} "
                    f"WHERE c.id BETWEEN {conv_base + lo} AND {conv_base + hi} AND k.i < {m['size']}",
                )
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"INSERT INTO {qn(links._meta.db_table)} (conversation_id, channel_id) "  # noqa: S608
                        f"SELECT id, reply_channel_id FROM {conv_table} WHERE id BETWEEN %s AND %s",
                        [conv_base + lo, conv_base + hi],
                    )
            say(f"  conversations {n_done:,}, messages {m_done:,} ({time.monotonic() - started:.1f}s)")
        with connection.cursor() as cursor:
            if no_triggers:
                cursor.execute("SET session_replication_role = DEFAULT")
            if sql.pg:
                for statement in connection.ops.sequence_reset_sql(
                    no_style(), [Conversation, Message, links]
                ):
                    cursor.execute(statement)
            cursor.execute("DROP TABLE IF EXISTS bench_people")
    # _Sqlite's exit refreshed the planner statistics (ANALYZE); on PostgreSQL also set the
    # visibility map now, so index-only scans work and autovacuum does not start mid-benchmark.
    if sql.pg and not connection.in_atomic_block:  # VACUUM cannot run in a transaction (tests)
        tables = ", ".join(
            qn(t) for t in (conv_table.strip('"'), Message._meta.db_table, links._meta.db_table)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {tables}")
    return {"conversations": n_done, "messages": m_done, "seconds": round(time.monotonic() - started, 1)}
