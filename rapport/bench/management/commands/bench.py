"""`rapport bench SUITE`: reproducible performance measurements.

- `core`: seed (or reuse) N people in a dedicated SQLite database, serve the app with gunicorn
  on a free loopback port, log in as a seeded sales rep and measure the main pages at
  concurrency 1 and 16. Prints a table, then one line of JSON as the very last line.
- `import`: the import pipeline's own benchmark (rapport.imports.benchmark).
- `ingest`: the inbox ingestion benchmark (rapport.conversations.benchmark), when it exists.
- `inbox`: like `core`, for the inbox list and the conversation page at M messages.
- `dashboard`: the listening dashboard over HTTP on the database `listening` left behind.

Suites live in SUITES; a new one is a function taking (command, options)."""

import datetime as dt
import importlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rapport.bench.httpbench import BenchError, Stats, Target, format_table, login, run_suite, summary
from rapport.bench.seed import DEMO_PASSWORD

CORE_PAGES = ["people", "people_tag", "people_q", "search", "person", "pipeline"]
EXTRA_PAGES = ["healthz", "home", "deals"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CommandError(f"The web server exited with code {proc.returncode} while starting.")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as resp:  # noqa: S310 — loopback URL we built
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise CommandError(f"The web server did not answer {base_url}/healthz within {timeout:.0f}s.")


def _gunicorn_extra() -> list[str]:
    # gunicorn ≥ 24 opens a control socket at one fixed path per user, so two servers (the
    # demo and a benchmark) would fight over it; we never use it.
    from gunicorn import config

    names = {s.name for s in config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def gunicorn_command(
    port: int, *, host: str = "127.0.0.1", workers: int = 2, threads: int = 4, worker_class: str = "gthread"
) -> list[str]:
    # --threads only for gthread: gunicorn quietly turns a sync worker with more than one
    # thread into a gthread worker, so the benchmarks' "sync" servers were gthread ones.
    return [
        sys.executable, "-m", "gunicorn", "rapport.wsgi:application",
        "--bind", f"{host}:{port}",
        "--chdir", str(settings.BASE_DIR),
        "--worker-class", worker_class,
        "--workers", str(workers),
        *(["--threads", str(threads)] if worker_class == "gthread" else []),
        "--keep-alive", "30",
        "--graceful-timeout", "10",
        *_gunicorn_extra(),
    ]  # fmt: skip


def stop(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _count_people(path: Path) -> int:
    if not path.exists():
        return 0
    from rapport.people.models import Person

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute(f'SELECT count(*) FROM "{Person._meta.db_table}"').fetchone()[0]  # noqa: S608
    except sqlite3.Error:
        return 0


def _sample(path: Path, n_ids: int = 500) -> tuple[list[int], list[str]]:
    """Person ids every user may see (for detail pages) and the commonest 3-letter
    surname prefixes (for filtered lists and search), read straight from the file."""
    from rapport.people.models import Person

    table = Person._meta.db_table
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        total = db.execute(f'SELECT max(id) FROM "{table}"').fetchone()[0] or 0  # noqa: S608
        step = max(1, total // n_ids)
        ids = [
            row[0]
            for row in db.execute(
                f'SELECT id FROM "{table}" WHERE visibility = ? AND merged_into_id IS NULL '  # noqa: S608
                "AND id % ? = 0 LIMIT ?",
                ("everyone", step, n_ids),
            )
        ]
        prefixes = [
            row[0]
            for row in db.execute(
                f'SELECT substr(sort_key, 1, 3) p FROM "{table}" WHERE length(sort_key) >= 3 '  # noqa: S608
                "GROUP BY p ORDER BY count(*) DESC LIMIT 10"
            )
        ]
    return ids, prefixes


def _targets(names: list[str], ids: list[int], prefixes: list[str]) -> list[Target]:
    prefix = prefixes[0] if prefixes else "mar"
    table: dict[str, Callable[[], list[str]]] = {
        "people": lambda: ["/people/"],
        "people_tag": lambda: ["/people/?tag=customer"],
        "people_q": lambda: [f"/people/?q={p}" for p in prefixes or [prefix]],
        "search": lambda: [f"/search/?format=json&q={p}" for p in prefixes or [prefix]],
        "person": lambda: [f"/people/{i}/" for i in ids],
        "pipeline": lambda: ["/pipeline/"],
        "healthz": lambda: ["/healthz"],
        "home": lambda: ["/"],
        "deals": lambda: ["/deals/"],
    }
    out = []
    for name in names:
        paths = table[name]()
        if not paths:
            raise CommandError(f"No data for page {name!r}: is the database seeded?")
        out.append(Target(name, paths))
    return out


def _concurrencies(opts: dict[str, Any]) -> list[int]:
    try:
        levels = sorted({int(c) for c in opts["concurrency"].split(",")})
    except ValueError:
        levels = []
    if not levels or levels[0] < 1 or levels[-1] > 256:
        raise CommandError("--concurrency is a comma-separated list of numbers from 1 to 256.")
    return levels


def server_label(opts: dict[str, Any]) -> str:
    if opts.get("worker_class", "sync") == "sync":
        return f"gunicorn sync {opts['workers']} workers"
    return f"gunicorn gthread {opts['workers']}x{opts['threads']}"


def _serve_and_measure(
    cmd: BaseCommand, opts: dict[str, Any], log_path: Path, env: dict[str, str], targets: list[Target]
) -> list[Stats]:
    """Serve the app (env names the database) with gunicorn on a free loopback port, log in
    as opts["user"] and measure the targets at each of opts["concurrency"]'s levels.

    Sync workers by default: each takes the next connection only when idle, so the kernel's
    accept queue shares 16 clients fairly between the workers. gthread workers keep
    connections alive and one worker would grab most of them, leaving a core idle."""
    out = cmd.stdout
    concurrencies = _concurrencies(opts)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = None
    try:
        with open(log_path, "w") as log:
            server = subprocess.Popen(  # noqa: S603
                gunicorn_command(
                    port,
                    workers=opts["workers"],
                    threads=opts["threads"],
                    worker_class=opts.get("worker_class", "sync"),
                ),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(base_url, server)
        cookie = login(base_url, opts["user"], DEMO_PASSWORD)
        out.write(
            f"Serving {base_url} ({server_label(opts)}); "
            f"as {opts['user']}; {opts['requests']} requests per page after {opts['warmup']} warm-up."
        )

        def progress(s):
            out.write(
                f"  {s.name:<16} c={s.concurrency:<3} p50 {s.p50_ms:7.1f} ms  p95 {s.p95_ms:7.1f} ms  "
                f"{s.rps:7.1f} req/s  errors {s.errors}"
                + (f"  server CPU {s.server_cpu_ms:.1f} ms/req" if s.server_cpu_ms is not None else "")
            )

        return run_suite(
            base_url,
            targets,
            concurrencies=concurrencies,
            requests=opts["requests"],
            warmup=opts["warmup"],
            cookie=cookie,
            progress=progress,
            # gunicorn's processes only (not PostgreSQL's): what limits the concurrent figures.
            server_pid=server.pid,
        )
    except BenchError as exc:
        raise CommandError(f"{exc} (server log: {log_path})")
    finally:
        stop(server)


def _serve_and_report(
    cmd: BaseCommand,
    opts: dict[str, Any],
    path: Path,
    env: dict[str, str],
    targets: list[Target],
    **extra: Any,
) -> None:
    """Serve the database at `path`, measure `targets`, print the table and the JSON line
    (`extra` goes into it); the server's log sits next to the database."""
    log_path = path.with_suffix(".server.log")
    _report(cmd, _serve_and_measure(cmd, opts, log_path, env, targets), log_path, **extra)


def _report(cmd: BaseCommand, results: list[Stats], log_path: Path, **extra: Any) -> None:
    """The table, any errors, then the JSON summary as the very last line; exit 1 on errors."""
    out = cmd.stdout
    out.write("")
    out.write(format_table(results))
    errors = [s for s in results if s.errors]
    for s in errors:
        out.write(
            f"ERRORS {s.name} c={s.concurrency}: {s.errors} of {s.requests}: {'; '.join(s.error_samples)}"
        )
    if errors:
        out.write(f"Server log: {log_path}")
    out.write(json.dumps(summary(results, **extra), separators=(",", ":")))
    if errors:
        raise SystemExit(1)


def run_core(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    people = opts["people"]
    if people < 1:
        raise CommandError("--people must be at least 1.")
    pages = [p.strip() for p in opts["pages"].split(",") if p.strip()]
    unknown = set(pages) - set(CORE_PAGES) - set(EXTRA_PAGES)
    if unknown:
        raise CommandError(f"Unknown pages {sorted(unknown)}; choose from {CORE_PAGES + EXTRA_PAGES}.")
    _concurrencies(opts)
    path = Path(opts["db"] or Path(settings.VAR_DIR) / f"bench-{people}.sqlite3").resolve()
    if str(path) == str(settings.DATABASES["default"].get("NAME")):
        raise CommandError(f"{path} is the application's own database; the benchmark needs its own file.")
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    out = cmd.stdout
    rapport = [sys.executable, "-m", "rapport.cli"]

    existing = _count_people(path)
    seed_seconds = None
    if opts["reuse"] and existing >= people:
        out.write(f"Reusing {path} ({existing:,} people).")
        subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        out.write(f"Creating {path} and seeding {people:,} people…")
        subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
        t0 = time.monotonic()
        subprocess.run(  # noqa: S603
            [*rapport, "seed", "--people", str(people), "--seed", str(opts["seed"]), "--users"],
            env=env,
            check=True,
        )
        seed_seconds = round(time.monotonic() - t0, 1)
        existing = _count_people(path)
    ids, prefixes = _sample(path)
    targets = _targets(pages, ids, prefixes)

    _serve_and_report(
        cmd,
        opts,
        path,
        env,
        targets,
        bench="core",
        people=existing,
        db=str(path),
        seed_seconds=seed_seconds,
        requests_per_run=opts["requests"],
        server=server_label(opts),
        user=opts["user"],
    )


def _count_rows(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
    except sqlite3.Error:
        return 0


def _external(module: str, what: str) -> Callable[..., Any]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise CommandError(f"The {what} benchmark is not available in this version ({module} is missing).")
    run = getattr(mod, "run", None)
    if run is None:
        raise CommandError(f"{module} has no run() function.")
    return run


def _rerun_in_scratch(cmd: BaseCommand, opts: dict[str, Any], name: str, argv: list[str]) -> None:
    """Run `rapport bench <argv> --in-place` against a fresh scratch SQLite database, so a
    benchmark never writes into the application's own data."""
    path = Path(opts.get("db") or Path(settings.VAR_DIR) / f"{name}.sqlite3").resolve()
    if str(path) == str(settings.DATABASES["default"].get("NAME")):
        raise CommandError(f"{path} is the application's own database; the benchmark needs its own file.")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    rapport = [sys.executable, "-m", "rapport.cli"]
    cmd.stdout.write(f"Fresh scratch database {path}")
    subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
    done = subprocess.run([*rapport, "bench", *argv, "--in-place"], env=env, check=False)  # noqa: S603
    if done.returncode:
        raise SystemExit(done.returncode)


def run_import(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    """Import N generated rows into a fresh scratch database (never the application's own),
    then print a table and the figures as one JSON line."""
    rows = opts["rows"]
    if rows < 1:
        raise CommandError("--rows must be at least 1.")
    run = _external("rapport.imports.benchmark", "import")
    if not opts.get("in_place"):
        _rerun_in_scratch(
            cmd,
            opts,
            f"bench-import-{rows}",
            ["import", "--rows", str(rows), *(["--dry-run"] if opts.get("dry_run") else [])],
        )
        return
    figures = run(rows=rows, stdout=cmd.stdout, dry_run=bool(opts.get("dry_run")))
    table = [
        ("rows", f"{figures['rows']:,}"),
        ("import seconds", f"{figures['seconds']:.1f}"),
        ("rows/s", f"{figures['rows_per_s']:,}"),
        ("created", f"{figures['created']:,}"),
        ("merged or skipped (duplicates)", f"{figures['merged_or_skipped']:,}"),
        ("failed (invalid rows)", f"{figures['failed']:,}"),
    ]
    if "dry_run_seconds" in figures:
        table.insert(2, ("dry-run seconds", f"{figures['dry_run_seconds']:.1f}"))
    width = max(len(k) for k, _ in table)
    cmd.stdout.write("\n".join(f"{k.ljust(width)}  {v:>12}" for k, v in table))
    cmd.stdout.write(json.dumps({"suite": "import", **figures}, separators=(",", ":")))


def run_ingest(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    if opts["messages"] < 1:
        raise CommandError("--messages must be at least 1.")
    _external("rapport.conversations.benchmark", "ingest")(messages=opts["messages"], stdout=cmd.stdout)


def run_listening(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    if opts["mentions"] < 1:
        raise CommandError("--mentions must be at least 1.")
    run = _external("rapport.listening.benchmark", "listening")
    if not opts.get("in_place"):
        _rerun_in_scratch(
            cmd,
            opts,
            f"bench-listening-{opts['mentions']}",
            ["listening", "--mentions", str(opts["mentions"])],
        )
        return
    run(mentions=opts["mentions"], stdout=cmd.stdout)


def run_dashboard(cmd: BaseCommand, opts: dict[str, Any]) -> None:
    """The listening dashboard over HTTP on the database `bench listening --mentions N` left
    behind: 7/30/60/90-day ranges, all queries and one query, at each concurrency level."""
    mentions = opts["mentions"]
    path = Path(opts["db"] or Path(settings.VAR_DIR) / f"bench-listening-{mentions}.sqlite3").resolve()
    found = _count_rows(path, "listening_mention") if path.exists() else 0
    if found < 1:
        raise CommandError(
            f"{path} has no mentions: run `rapport bench listening --mentions {mentions}` first."
        )
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    rapport = [sys.executable, "-m", "rapport.cli"]
    subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
    # The listening bench's data belongs to one manager; give it the demo password to log in.
    user = opts["user"]
    code = (
        "from rapport.accounts.models import User; "
        f"u = User.objects.filter(username={user!r}).first() or User.objects.filter(role='manager').first(); "
        f"u.set_password({DEMO_PASSWORD!r}); u.save(); print(u.username)"
    )
    done = subprocess.run(  # noqa: S603 — our own interpreter and code
        [*rapport, "shell", "-c", code], env=env, check=True, capture_output=True, text=True
    )
    opts = {**opts, "user": done.stdout.strip().splitlines()[-1]}
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT id FROM listening_listeningquery ORDER BY id LIMIT 1").fetchone()
    today = timezone.localdate()  # the dashboard's ranges end today, as the bench's mentions do
    targets = []
    for days in (7, 30, 60, 90):
        since = (today - dt.timedelta(days=days - 1)).isoformat()
        targets.append(Target(f"dashboard {days}d", [f"/listening/?since={since}"]))
        if row and days == 30:
            targets.append(Target("dashboard 30d, query", [f"/listening/?since={since}&query={row[0]}"]))
    _serve_and_report(
        cmd,
        opts,
        path,
        env,
        targets,
        bench="dashboard",
        mentions=found,
        db=str(path),
        server=server_label(opts),
    )


SUITES: dict[str, Callable[[BaseCommand, dict[str, Any]], None]] = {
    "core": run_core,
    "import": run_import,
    "ingest": run_ingest,
    "listening": run_listening,
    "dashboard": run_dashboard,
    "inbox": lambda cmd, opts: importlib.import_module("rapport.conversations.inbox_bench").run(cmd, opts),
}


class Command(BaseCommand):
    help = "Run a benchmark suite: core (web pages at scale), inbox, import, ingest, listening."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
        core = sub.add_parser("core", help="Seed N people and measure the main pages over HTTP.")
        core.add_argument("--people", type=int, default=100_000)
        core.add_argument("--reuse", action="store_true", help="Reuse the database if it has ≥ N people.")
        core.add_argument("--requests", type=int, default=200, help="Measured requests per page and level.")
        core.add_argument("--warmup", type=int, default=20)
        core.add_argument("--concurrency", default="1,16", help="Comma-separated levels (default 1,16).")
        core.add_argument("--db", help="SQLite file (default var/bench-N.sqlite3).")
        core.add_argument("--seed", type=int, default=1)
        core.add_argument("--user", default="maria", help="Seeded demo user to log in as.")
        core.add_argument("--workers", type=int, default=2)
        core.add_argument("--threads", type=int, default=4, help="Threads per gthread worker.")
        core.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
        core.add_argument("--pages", default=",".join(CORE_PAGES), help=f"Any of {CORE_PAGES + EXTRA_PAGES}.")
        imp = sub.add_parser("import", help="Import pipeline throughput (rapport.imports.benchmark).")
        imp.add_argument("--rows", type=int, default=100_000)
        imp.add_argument("--dry-run", action="store_true", help="Also time the dry-run (analysis) pass.")
        imp.add_argument("--db", help="Scratch SQLite file (default var/bench-import-N.sqlite3), recreated.")
        imp.add_argument("--in-place", action="store_true", help="Use the configured database as it is.")
        ingest = sub.add_parser(
            "ingest", help="Inbox ingestion throughput (rapport.conversations.benchmark)."
        )
        ingest.add_argument("--messages", type=int, default=10_000)
        listening = sub.add_parser(
            "listening", help="Mention ingest throughput (rapport.listening.benchmark)."
        )
        listening.add_argument("--mentions", type=int, default=20_000)
        listening.add_argument(
            "--db", help="Scratch SQLite file (default var/bench-listening-N.sqlite3), recreated."
        )
        listening.add_argument(
            "--in-place", action="store_true", help="Use the configured database as it is."
        )

        dash = sub.add_parser(
            "dashboard", help="The listening dashboard over HTTP on the listening bench's database."
        )
        dash.add_argument("--mentions", type=int, default=1_000_000, help="Which listening bench DB to use.")
        dash.add_argument("--db", help="SQLite file (default var/bench-listening-N.sqlite3).")
        dash.add_argument("--requests", type=int, default=100, help="Measured requests per page and level.")
        dash.add_argument("--warmup", type=int, default=10)
        dash.add_argument("--concurrency", default="1,16", help="Comma-separated levels (default 1,16).")
        dash.add_argument(
            "--user", default="bench-listening", help="User to log in as (given the demo password)."
        )
        dash.add_argument("--workers", type=int, default=2)
        dash.add_argument("--threads", type=int, default=4, help="Threads per gthread worker.")
        dash.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")

        inbox = sub.add_parser(
            "inbox", help="Seed M messages and measure the inbox list and conversation page over HTTP."
        )
        inbox.add_argument("--messages", type=int, default=1_000_000)
        inbox.add_argument("--people", type=int, default=100_000)
        inbox.add_argument("--reuse", action="store_true", help="Reuse the database if it has ≥ M messages.")
        inbox.add_argument("--requests", type=int, default=200, help="Measured requests per page and level.")
        inbox.add_argument("--warmup", type=int, default=20)
        inbox.add_argument("--concurrency", default="1,16", help="Comma-separated levels (default 1,16).")
        inbox.add_argument("--db", help="SQLite file (default var/bench-inbox-M.sqlite3).")
        inbox.add_argument(
            "--database-url",
            help="postgres://…/rapport_bench_… (recreated) or sqlite:///path instead of --db.",
        )
        inbox.add_argument("--seed", type=int, default=1)
        inbox.add_argument("--user", default="maria", help="Seeded demo user to log in as.")
        inbox.add_argument("--workers", type=int, default=2)
        inbox.add_argument("--threads", type=int, default=4, help="Threads per gthread worker.")
        inbox.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
        inbox.add_argument(
            "--seed-only",
            action="store_true",
            help="Internal: bulk-seed the configured (scratch) database with the messages and stop.",
        )

    def handle(self, *args, **opts):
        if opts.get("requests") is not None and opts["requests"] < 1:
            raise CommandError("--requests must be at least 1.")
        SUITES[opts["suite"]](self, opts)
