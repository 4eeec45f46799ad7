"""Writes for imports: upload, mapping, dry run, import. Keyword-only; the long phases run in
background tasks (rapport.imports.tasks) that call `job_analyse` / `job_execute`.

The import itself runs in one transaction: it all lands or nothing does. Rows that fail
validation do not abort it; they go to the per-row error report."""

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from rapport.accounts.models import Team, User
from rapport.core.actions import default_team, require_write, resolve_access_fields
from rapport.core.errors import ActionError
from rapport.imports import engine
from rapport.imports.kinds import IMPORTERS
from rapport.imports.mapping import TARGETS, guess_mapping, validate_mapping
from rapport.imports.models import ImportJob, ImportKind, ImportStatus, OnDuplicate
from rapport.imports.readers import FileInfo, FileProblem, open_rows, sniff

logger = logging.getLogger(__name__)
SAMPLE_ROWS = 5


def upload_path(job: ImportJob) -> Path:
    return engine.imports_dir() / job.stored_name


def report_path(job: ImportJob) -> Path:
    return engine.imports_dir() / f"{job.stored_name}.errors.csv"


def progress_path(job: ImportJob) -> Path:
    return engine.imports_dir() / f"{job.stored_name}.progress.json"


def _save_upload(chunks: Any, limit: int) -> tuple[str, int]:
    from django.conf import settings

    name = secrets.token_hex(16)
    path = engine.imports_dir() / name
    size = 0
    try:
        with path.open("xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ActionError(
                        f"The file is larger than the limit of {settings.RAPPORT_IMPORT_MAX_BYTES // (1024 * 1024)} MB.",
                        {"file": ["Too large."]},
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return name, size


def job_create(*, actor: User, kind: str, chunks: Any, original_name: str = "") -> ImportJob:
    """Store an uploaded file (an iterable of byte chunks) and read its header and first rows.

    The stored name is random; `original_name` is only shown back to the user."""
    from django.conf import settings

    require_write(actor)
    if kind not in ImportKind.values:
        raise ActionError(
            "Choose what the file contains.", {"kind": [f"One of {', '.join(ImportKind.values)}."]}
        )
    name, size = _save_upload(chunks, settings.RAPPORT_IMPORT_MAX_BYTES)
    path = engine.imports_dir() / name
    try:
        info = sniff(path)
        with open_rows(path, info) as (headers, rows):
            samples = []
            for _, cells in engine.iter_data_rows(rows):
                samples.append([c[:200] for c in cells[: len(headers)]])
                if len(samples) >= SAMPLE_ROWS:
                    break
    except FileProblem as exc:
        path.unlink(missing_ok=True)
        raise ActionError(str(exc), {"file": [str(exc)]})
    if not samples:
        path.unlink(missing_ok=True)
        raise ActionError("The file has a header row but no data rows.", {"file": ["No data rows."]})
    clean_name = "".join(ch for ch in original_name if ch.isprintable())[-255:]
    return ImportJob.objects.create(
        owner=actor,
        kind=kind,
        stored_name=name,
        original_name=clean_name,
        size=size,
        file_format=info.file_format,
        encoding=info.encoding,
        delimiter=info.delimiter,
        warnings=info.warnings,
        headers=headers,
        samples=samples,
        mapping=guess_mapping(kind, headers),
        team=default_team(actor),
    )


def _check_owner(actor: User, job: ImportJob) -> None:
    require_write(actor)
    if job.owner_id != actor.pk and not actor.is_admin:
        raise ActionError("This import belongs to someone else.")


def job_configure(
    *,
    actor: User,
    job: ImportJob,
    mapping: list[str],
    on_duplicate: str = OnDuplicate.SKIP,
    visibility: str | None = None,
    team: Team | None = None,
) -> ImportJob:
    """Set the column mapping and the import options, then start the dry run."""
    _check_owner(actor, job)
    if not job.can_change_mapping:
        raise ActionError("The mapping can no longer be changed: the import has started.")
    mapping = [m if isinstance(m, str) else "" for m in mapping]
    errors = validate_mapping(job.kind, mapping, len(job.headers))
    if on_duplicate not in OnDuplicate.values:
        errors["on_duplicate"] = [f"Choose one of {', '.join(OnDuplicate.values)}."]
    if errors:
        raise ActionError("Check the column choices.", errors)
    access = resolve_access_fields(actor=actor, team=team, visibility=visibility)
    job.mapping = mapping
    job.on_duplicate = on_duplicate
    if "visibility" in access:
        job.visibility = access["visibility"]
    if "team" in access:
        job.team = access["team"]
    job.status = ImportStatus.ANALYSING
    job.rows_done = 0
    job.save()
    from rapport.imports.tasks import analyse_import

    analyse_import.enqueue(job.pk)
    job.refresh_from_db()
    return job


def job_start(*, actor: User, job: ImportJob) -> ImportJob:
    _check_owner(actor, job)
    errors = validate_mapping(job.kind, job.mapping, len(job.headers))
    if errors:
        raise ActionError("Check the column choices first.", errors)
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportStatus.UPLOADED, ImportStatus.ANALYSED]
    ).update(status=ImportStatus.QUEUED, rows_done=0)
    if not claimed:
        raise ActionError(
            "This import cannot be started now (it is running, finished or still being checked)."
        )
    from rapport.imports.tasks import run_import

    run_import.enqueue(job.pk)
    job.refresh_from_db()
    return job


def _context(job: ImportJob, *, dry: bool, total: int) -> engine.RunContext:
    return engine.RunContext(
        job=job,
        user=job.owner,
        dry=dry,
        headers=list(job.headers),
        mapping=list(job.mapping),
        report=engine.ErrorReport(report_path(job), list(job.headers)),
        progress=engine.Progress(progress_path(job), "analyse" if dry else "import", total),
    )


def _file_info(job: ImportJob) -> FileInfo:
    return FileInfo(job.file_format, encoding=job.encoding, delimiter=job.delimiter)


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, FileProblem | ActionError):
        return str(exc)
    return "An unexpected error stopped the work; nothing was saved. The details are in the server log."


def job_analyse(*, job_id: int) -> None:
    """The dry run over the whole file: counts and a preview, nothing written."""
    job = ImportJob.objects.select_related("owner").filter(pk=job_id, status=ImportStatus.ANALYSING).first()
    if job is None:
        return
    path = upload_path(job)
    info = _file_info(job)
    total = job.rows_total or engine.estimate_rows(path, info)
    ctx = _context(job, dry=True, total=total)
    try:
        stats = engine.run(IMPORTERS[job.kind](ctx), path, info)
    except Exception as exc:
        logger.exception("dry run of import %s failed", job.pk)
        ctx.report.close()
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.ANALYSING).update(
            status=ImportStatus.FAILED, error=_failure_message(exc), finished_at=timezone.now()
        )
        return
    ImportJob.objects.filter(pk=job.pk, status=ImportStatus.ANALYSING).update(
        status=ImportStatus.ANALYSED,
        preview=stats.preview,
        dry_new=stats.created,
        dry_duplicate=stats.duplicates,
        dry_invalid=stats.failed,
        rows_total=stats.rows,
        rows_done=stats.rows,
        has_error_report=ctx.report.count > 0,
        analysed_at=timezone.now(),
        error="",
    )


@contextmanager
def _big_sqlite_cache() -> Iterator[None]:
    """A million-row import updates several indexes at random places; a page cache that
    holds them saves most of the write time. Per connection, restored afterwards."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("PRAGMA cache_size")
        before = cur.fetchone()[0]
        cur.execute("PRAGMA cache_size = -524288")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA cache_size = {int(before)}")


def job_execute(*, job_id: int) -> None:
    """Run a queued import in one transaction. Idempotent: only a queued job is claimed."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now(), error=""
    )
    if not claimed:
        return
    job = ImportJob.objects.select_related("owner").get(pk=job_id)
    path = upload_path(job)
    info = _file_info(job)
    ctx = _context(job, dry=False, total=job.rows_total or engine.estimate_rows(path, info))
    started = time.monotonic()
    try:
        if not job.owner.can_write:
            raise ActionError("The importing user can no longer write; nothing was imported.")
        with transaction.atomic(), _big_sqlite_cache():
            stats = engine.run(IMPORTERS[job.kind](ctx), path, info)
    except Exception as exc:
        logger.exception("import %s failed", job.pk)
        ctx.report.close()
        report_path(job).unlink(missing_ok=True)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED,
            error=_failure_message(exc),
            finished_at=timezone.now(),
            has_error_report=False,
            created=0,
            merged=0,
            skipped=0,
            failed=0,
        )
        return
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.DONE,
        rows_total=stats.rows,
        rows_done=stats.rows,
        created=stats.created,
        merged=stats.merged,
        skipped=stats.skipped,
        failed=stats.failed,
        has_error_report=ctx.report.count > 0,
        seconds=round(time.monotonic() - started, 2),
        finished_at=timezone.now(),
    )
    # The upload holds personal data the CRM now has; do not keep a second copy lying around.
    path.unlink(missing_ok=True)
    if stats.created + stats.merged >= BULK_LOAD_ROWS:
        from rapport.core.db import refresh_planner_stats

        refresh_planner_stats()


# After an import this big, refresh the planner's statistics (see rapport.core.db).
BULK_LOAD_ROWS = 50_000


def target_choices(kind: str) -> list[tuple[str, str]]:
    from rapport.imports.mapping import ALLOWS_CUSTOM

    choices = [("", "— ignore this column —")]
    choices += [(k, label) for k, (label, _) in TARGETS[kind].items()]
    if ALLOWS_CUSTOM[kind]:
        choices.append(("custom", "Custom field (keep under the column's name)"))
    return choices
