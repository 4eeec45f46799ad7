"""`rapport bench inbox`: seed (or reuse) M messages in a scratch database, SQLite by default or
PostgreSQL with --database-url, serve the app with gunicorn on a free loopback port, log in
as a seeded agent and measure every inbox view and the conversation page at each concurrency
level. Prints a table, then one line of JSON as the very last line.

The scratch database is the benchmark's own: a SQLite file (never var/rapport.sqlite3) or a
PostgreSQL database whose name starts with "rapport_bench", created and dropped here through
the server's maintenance database, whose contents are never touched."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rapport.bench.httpbench import Stats, Target

PG_PREFIX = "rapport_bench"


class Scratch:
    """The benchmark's database: where it is, how to reset it, and raw reads for sampling."""

    def __init__(self, opts: dict[str, Any]):
        url = opts.get("database_url") or ""
        self.pg = url.startswith(("postgres://", "postgresql://"))
        if self.pg:
            parts = urlsplit(url)
            self.name = parts.path.lstrip("/")
            if not self.name.startswith(PG_PREFIX) or not self.name.replace("_", "").isalnum():
                raise CommandError(
                    f"The PostgreSQL database name must start with {PG_PREFIX!r} (letters, digits, _): "
                    "the benchmark drops and recreates it."
                )
            self.url = url
            self._admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.label = f"postgresql {self.name}"
            self.log = Path(settings.VAR_DIR).resolve() / f"bench-inbox-{self.name}.server.log"
        else:
            if url and not url.startswith("sqlite:///"):
                raise CommandError("--database-url is postgres://… or sqlite:///path.")
            default = Path(settings.VAR_DIR) / f"bench-inbox-{opts['messages']}.sqlite3"
            self.path = Path(url.removeprefix("sqlite:///") if url else opts.get("db") or default).resolve()
            if str(self.path) == str(settings.DATABASES["default"].get("NAME")):
                raise CommandError(
                    f"{self.path} is the application's own database; the benchmark needs its own."
                )
            self.url = f"sqlite:///{self.path}"
            self.label = str(self.path)
            self.log = self.path.with_suffix(".server.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)

    def rows(self, sql: str) -> list[tuple]:
        """Rows of one read-only query (no parameters: callers inline integers only)."""
        if self.pg:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as db:
                return list(db.execute(sql.encode()).fetchall())
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchall()

    def count(self, model: Any) -> int:
        try:
            return self.rows(f'SELECT count(*) FROM "{model._meta.db_table}"')[0][0]  # noqa: S608
        except Exception:  # noqa: BLE001 - a missing file, database or table all mean "nothing there"
            return 0

    def reset(self) -> None:
        if self.pg:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self._admin_url, autocommit=True) as db:
                db.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _targets(db: Scratch, username: str) -> list[Target]:
    """Every inbox view, a per-channel list, and conversation pages spread over the whole
    table (old and new, open and closed) among those the agent may see."""
    from rapport.accounts.models import User
    from rapport.channels.models import Channel
    from rapport.conversations.models import Conversation

    if not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise CommandError("--user is a username (letters, digits, _ . -).")
    users, conv, channels = User._meta.db_table, Conversation._meta.db_table, Channel._meta.db_table
    teams = User.teams.through._meta.db_table
    found = db.rows(f"SELECT id FROM \"{users}\" WHERE username = '{username}'")  # noqa: S608 - checked name
    if not found:
        raise CommandError(f"No user {username!r} in the benchmark database.")
    uid = found[0][0]
    team_ids = [r[0] for r in db.rows(f'SELECT team_id FROM "{teams}" WHERE user_id = {int(uid)}')] or [0]  # noqa: S608
    in_teams = ", ".join(str(int(t)) for t in team_ids)
    top = db.rows(f'SELECT max(id) FROM "{conv}"')[0][0] or 0  # noqa: S608
    step = max(1, top // 500)
    ids = [
        r[0]
        for r in db.rows(
            f'SELECT id FROM "{conv}" WHERE id % {step} = 0 '  # noqa: S608
            f"AND (team_id IN ({in_teams}) OR assignee_id = {int(uid)}) ORDER BY id LIMIT 500"
        )
    ]
    channel_ids = [
        r[0] for r in db.rows(f'SELECT id FROM "{channels}" WHERE team_id IN ({in_teams}) ORDER BY id')
    ]  # noqa: S608
    if not ids:
        raise CommandError(
            f"{db.label} has no conversations {username} may see: run without --reuse to seed it."
        )
    return [
        Target("inbox_mine", ["/inbox/?view=mine"]),
        Target("inbox_unassigned", ["/inbox/?view=unassigned"]),
        Target("inbox_teams", ["/inbox/?view=teams"]),
        Target("inbox_all", ["/inbox/?view=all"]),
        Target("inbox_all_any", ["/inbox/?view=all&status=any"]),
        Target(
            "inbox_channel", [f"/inbox/?view=all&channel={c}" for c in channel_ids] or ["/inbox/?view=all"]
        ),
        Target("inbox_sla", ["/inbox/?view=sla"]),
        Target("conversation", [f"/inbox/{i}/" for i in ids]),
    ]


def _seed(cmd: BaseCommand, opts: dict[str, Any], db: Scratch) -> float:
    out = cmd.stdout
    env = {**os.environ, "DATABASE_URL": db.url}
    rapport = [sys.executable, "-m", "rapport.cli"]
    db.reset()
    out.write(f"Creating {db.label}: {opts['people']:,} people, then {opts['messages']:,} messages…")
    t0 = time.monotonic()
    subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
    seed = str(opts["seed"])
    people = [*rapport, "seed", "--people", str(opts["people"]), "--seed", seed, "--users"]
    subprocess.run(people, env=env, check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*rapport, "bench", "inbox", "--seed-only", "--messages", str(opts["messages"]), "--seed", seed],
        env=env,
        check=True,
    )
    return round(time.monotonic() - t0, 1)


def _measure(cmd: BaseCommand, opts: dict[str, Any], db: Scratch, targets: list[Target]) -> list[Stats]:
    from rapport.bench.management.commands.bench import _serve_and_measure

    return _serve_and_measure(cmd, opts, db.log, {**os.environ, "DATABASE_URL": db.url}, targets)


def _seed_in_place(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    """The subprocess half: bulk-seed the configured (scratch) database and stop."""
    from rapport.bench.seed import SeedError
    from rapport.conversations.inbox_seed import seed_inbox

    try:
        done = seed_inbox(messages=opts["messages"], seed=opts["seed"], progress=cmd.stdout.write)
    except SeedError as exc:
        raise CommandError(str(exc))
    cmd.stdout.write(
        f"Seeded {done['conversations']:,} conversations, {done['messages']:,} messages in {done['seconds']}s."
    )


def run(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    from rapport.bench.management.commands.bench import _concurrencies, _report, server_label
    from rapport.conversations.models import Conversation, Message
    from rapport.people.models import Person

    if opts["messages"] < 1 or opts["people"] < 1:
        raise CommandError("--messages and --people must be at least 1.")
    if opts["seed_only"]:
        _seed_in_place(cmd, opts)
        return
    _concurrencies(opts)  # a bad --concurrency fails before seeding, not after
    db = Scratch(opts)
    seed_seconds = None
    if opts["reuse"] and db.count(Message) >= opts["messages"] and db.count(Person) >= opts["people"]:
        cmd.stdout.write(f"Reusing {db.label} ({db.count(Message):,} messages).")
        subprocess.run(  # noqa: S603 - brings the indexes up to date
            [sys.executable, "-m", "rapport.cli", "migrate", "--noinput", "-v0"],
            env={**os.environ, "DATABASE_URL": db.url},
            check=True,
        )
    else:
        seed_seconds = _seed(cmd, opts, db)
    results = _measure(cmd, opts, db, _targets(db, opts["user"]))
    _report(
        cmd,
        results,
        db.log,
        bench="inbox",
        database="postgresql" if db.pg else "sqlite",
        messages=db.count(Message),
        conversations=db.count(Conversation),
        people=db.count(Person),
        db=db.label,
        seed_seconds=seed_seconds,
        requests_per_run=opts["requests"],
        server=server_label(opts),
        user=opts["user"],
    )
