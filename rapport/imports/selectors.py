"""Reads for imports. A job is visible to the user who uploaded it (and to admins): the file
and its error report hold data that is not yet under record-level access control."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from rapport.accounts.models import User
from rapport.imports import actions, engine
from rapport.imports.models import ImportJob, ImportStatus


def jobs_visible(user: User) -> QuerySet[ImportJob]:
    if not user.is_authenticated or not user.is_active:
        return ImportJob.objects.none()
    qs = ImportJob.objects.all()
    return qs if user.is_admin else qs.filter(owner=user)


def job_for(*, user: User, job_id: Any) -> ImportJob:
    try:
        return jobs_visible(user).select_related("owner", "team").get(pk=job_id)
    except (ImportJob.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")


def job_status(job: ImportJob) -> dict[str, Any]:
    """What the progress bar needs. While a phase runs, the live figures come from the
    progress file (the job row is only updated when the phase ends)."""
    data: dict[str, Any] = {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "phase": "import"
        if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE)
        else "analyse",
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "created": job.created,
        "merged": job.merged,
        "skipped": job.skipped,
        "failed": job.failed,
        "dry_new": job.dry_new,
        "dry_duplicate": job.dry_duplicate,
        "dry_invalid": job.dry_invalid,
        "has_error_report": job.has_error_report,
        "error": job.error,
        "active": job.is_active,
    }
    if job.status in (ImportStatus.ANALYSING, ImportStatus.RUNNING):
        live = engine.read_progress(actions.progress_path(job))
        if live and live.get("phase") == data["phase"]:
            for key in ("rows_total", "rows_done", "created", "merged", "skipped", "failed"):
                if isinstance(live.get(key), int):
                    data[key] = live[key]
    total = data["rows_total"] or 0
    data["percent"] = (
        100
        if job.status in (ImportStatus.DONE, ImportStatus.ANALYSED)
        else (min(99, int(100 * data["rows_done"] / total)) if total else 0)
    )
    return data
