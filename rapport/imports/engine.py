"""The import pipeline shared by every kind: read rows, validate, find duplicates, write in
bulk, report per-row errors, publish progress.

Speed at a million rows comes from three choices: indexes of existing identities and names
are loaded into memory once (no query per row); new records get their primary keys from us
(so identities, tags and addresses can reference them without a round trip); and rows are
written with executemany in batches. The caller wraps a real run in one transaction, so a
failure leaves nothing behind."""

import csv
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.db import connection, models

from rapport.imports.readers import FileInfo, open_rows

BATCH = 5000
PREVIEW_ROWS = 20
MAX_CELL_CHARS = 5000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def imports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class RowError(Exception):
    pass


@dataclass
class CellError:
    column: str
    value: str
    message: str


@dataclass
class Stats:
    rows: int = 0
    created: int = 0
    merged: int = 0
    skipped: int = 0
    failed: int = 0
    duplicates: int = 0
    preview: list[dict[str, Any]] = field(default_factory=list)


class ErrorReport:
    """CSV of rejected rows: row number, column, value, message, then the original cells, so
    the rows can be fixed in a spreadsheet and imported again."""

    def __init__(self, path: Path | None, headers: list[str]):
        self.path = path
        self.count = 0
        self._file: TextIO | None = None
        self._writer: Any = None
        self.headers = headers

    def add(self, row_number: int, errors: list[CellError], cells: list[str]) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["row", "column", "value", "message", *self.headers])
        original = [spreadsheet_safe(c) for c in cells]
        for err in errors:
            self._writer.writerow(
                [
                    row_number,
                    spreadsheet_safe(err.column),
                    spreadsheet_safe(err.value[:200]),
                    spreadsheet_safe(err.message),
                    *original,
                ]
            )
            self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Progress:
    """Live progress in a small JSON file next to the upload: readable by the web process
    while the import's transaction still holds the database write lock."""

    def __init__(self, path: Path | None, phase: str, total: int):
        self.path, self.phase, self.total = path, phase, total
        self._last = 0.0

    def update(self, stats: Stats, force: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        data = {
            "phase": self.phase,
            "rows_total": max(self.total, stats.rows),
            "rows_done": stats.rows,
            "created": stats.created,
            "merged": stats.merged,
            "skipped": stats.skipped,
            "failed": stats.failed,
            "duplicates": stats.duplicates,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


def read_progress(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- bulk writing ------------------------------------------------------------------------


class IdAllocator:
    """Primary keys for new rows, handed out before the insert.

    SQLite: the import's transaction holds the write lock from its first statement
    (transaction_mode IMMEDIATE), so max(id)+1 onwards is ours. PostgreSQL: values are taken
    from the table's sequence in blocks. A dry run only counts."""

    def __init__(self, model: type[models.Model], dry: bool):
        self.model = model
        self.dry = dry
        self.vendor = connection.vendor
        self._pool: list[int] = []
        self._next = 0
        if dry or self.vendor == "sqlite":
            self._next = self._sqlite_start() if self.vendor == "sqlite" else self._max_id() + 1
        elif self.vendor != "postgresql":
            raise NotImplementedError("The fast import path supports SQLite and PostgreSQL.")

    def _max_id(self) -> int:
        return self.model._default_manager.aggregate(m=models.Max("pk"))["m"] or 0

    def _sqlite_start(self) -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [self.model._meta.db_table])
            row = cur.fetchone()
        return max(self._max_id(), row[0] if row else 0) + 1

    def next(self) -> int:
        if self.dry or self.vendor == "sqlite":
            value = self._next
            self._next += 1
            return value
        if not self._pool:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [self.model._meta.db_table, self.model._meta.pk.column, 1000],
                )
                self._pool = [r[0] for r in cur.fetchall()][::-1]
        return self._pool.pop()


class Inserter:
    """Collects rows for one table and writes them with executemany.

    Values are given by attname; unspecified columns get the field default, prepared for the
    database once. String, int and bool values pass through as they are; other types must be
    prepared by the caller with `prep`."""

    def __init__(self, model: type[models.Model], *, dry: bool, with_pk: bool):
        self.model = model
        self.dry = dry
        fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        self.fields = {f.attname: f for f in fields}
        self.defaults: list[tuple[str, Any]] = []
        for f in fields:
            default = f.get_default() if not f.primary_key else None
            self.defaults.append((f.attname, f.get_db_prep_save(default, connection)))
        qn = connection.ops.quote_name
        # Concrete fields always have a column; the stubs type it optional for all fields.
        columns = [qn(f.column) for f in fields]  # type: ignore[arg-type]
        self.sql = (
            f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
        self.rows: list[list[Any]] = []
        self.total = 0

    def prep(self, attname: str, value: Any) -> Any:
        return self.fields[attname].get_db_prep_save(value, connection)

    def add(self, values: dict[str, Any]) -> None:
        self.total += 1
        if self.dry:
            return
        get = values.get
        self.rows.append([get(name, default) for name, default in self.defaults])

    def flush(self) -> None:
        if self.rows:
            with connection.cursor() as cur:
                cur.executemany(self.sql, self.rows)
            self.rows = []


# --- the run loop --------------------------------------------------------------------------


@dataclass
class RunContext:
    job: Any
    user: Any
    dry: bool
    headers: list[str]
    mapping: list[str]
    report: ErrorReport
    progress: Progress
    stats: Stats = field(default_factory=Stats)


def estimate_rows(path: Path, info: FileInfo) -> int:
    if info.file_format != "csv":
        return 0
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


def iter_data_rows(rows: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Numbered like the spreadsheet shows them: the header is row 1. Blank rows are skipped."""
    for n, cells in enumerate(rows, start=2):
        for c in cells:
            if c and not c.isspace():
                yield n, cells
                break


# From this many rows on, a SQLite import drops the secondary indexes of the tables it fills
# and rebuilds them once at the end (a sorted build beats a million random index inserts).
DEFER_INDEXES_ROWS = 100_000
DEFERRED_TABLES = (
    "people_person",
    "people_identity",
    "people_employment",
    "people_address",
    "people_person_tags",
)


@contextmanager
def deferred_indexes(enabled: bool) -> Iterator[None]:
    """Inside the import's transaction: drop the non-unique indexes, yield, recreate them.

    Safe because it is all one transaction: other connections keep reading the committed
    snapshot with its indexes (WAL), and a failure rolls the drop back with everything else.
    Unique indexes stay: the import relies on them (INSERT OR IGNORE of tag links)."""
    if not enabled or connection.vendor != "sqlite" or not connection.in_atomic_block:
        yield
        return
    placeholders = ", ".join(["%s"] * len(DEFERRED_TABLES))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND sql NOT LIKE 'CREATE UNIQUE%%' AND tbl_name IN ({placeholders})",
            list(DEFERRED_TABLES),
        )
        saved = cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        for _, sql in saved:
            cursor.execute(sql)


def run(importer: Any, path: Path, info: FileInfo) -> Stats:
    """Drive `importer` (see rapport.imports.kinds) over every data row of the file."""
    ctx = importer.ctx
    stats = ctx.stats
    big = not ctx.dry and (ctx.progress.total or 0) >= DEFER_INDEXES_ROWS
    with open_rows(path, info) as (headers, rows), deferred_indexes(big):
        importer.load_indexes()
        ctx.progress.update(stats, force=True)
        n_headers = len(ctx.headers)
        for row_number, cells in iter_data_rows(rows):
            stats.rows += 1
            errors: list[CellError] = []
            if len(cells) > n_headers and any(c.strip() for c in cells[n_headers:]):
                errors.append(
                    CellError(
                        "",
                        "",
                        f"This row has {len(cells)} cells but the header has {n_headers}; "
                        "the extra cells would be lost.",
                    )
                )
            else:
                importer.handle_row(row_number, cells, errors)
            if errors:
                stats.failed += 1
                ctx.report.add(row_number, errors, cells)
                if len(stats.preview) < PREVIEW_ROWS:
                    stats.preview.append(
                        {
                            "row": row_number,
                            "action": "invalid",
                            "label": importer.label_for(cells),
                            "errors": [f"{e.column}: {e.message}" if e.column else e.message for e in errors],
                        }
                    )
            if stats.rows % BATCH == 0:
                importer.flush()
                ctx.progress.update(stats)
        importer.flush()
        importer.finish()
    ctx.report.close()
    ctx.progress.update(stats, force=True)
    return stats
