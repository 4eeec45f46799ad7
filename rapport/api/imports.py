"""Imports and exports over the API.

Flow: POST /imports (multipart: kind, file) → PUT /imports/{id}/mapping (starts the dry run)
→ GET /imports/{id} until status is "analysed" → POST /imports/{id}/start → GET /imports/{id}
until "done" or "failed" → GET /imports/{id}/errors.csv for rejected rows.
Exports: GET /exports/{kind}?format=csv|xlsx plus the list's filters, same rows as the web
export and the lists."""

from typing import Any, Literal

from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from rapport.accounts.models import Team
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.imports import actions, export
from rapport.imports.models import ImportJob
from rapport.imports.selectors import job_for, job_status, jobs_visible
from rapport.imports.views import error_report_response

router = Router(tags=["Imports"])


class ColumnOut(Schema):
    index: int
    header: str
    target: str
    samples: list[str]


class ImportOut(Schema):
    id: int
    kind: str
    status: str
    status_label: str
    file_name: str
    file_format: str
    encoding: str
    delimiter: str
    warnings: list[str]
    columns: list[ColumnOut]
    targets: list[str]
    on_duplicate: str
    visibility: str
    team_id: int | None
    progress: dict[str, Any]
    preview: list[dict[str, Any]]
    error: str


class MappingIn(Schema):
    mapping: list[str]
    on_duplicate: Literal["skip", "merge", "create"] = "skip"
    visibility: Literal["private", "team", "everyone"] | None = None
    team_id: int | None = None


def _out(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "status_label": job.get_status_display(),
        "file_name": job.original_name,
        "file_format": job.file_format,
        "encoding": job.encoding,
        "delimiter": job.delimiter,
        "warnings": job.warnings,
        "columns": [
            {
                "index": i,
                "header": h,
                "target": job.mapping[i] if i < len(job.mapping) else "",
                "samples": [s[i] for s in job.samples if i < len(s)][:3],
            }
            for i, h in enumerate(job.headers)
        ],
        "targets": [k for k, _ in actions.target_choices(job.kind)],
        "on_duplicate": job.on_duplicate,
        "visibility": job.visibility,
        "team_id": job.team_id,
        "progress": job_status(job),
        "preview": job.preview,
        "error": job.error,
    }


@router.get("/imports", response=list[ImportOut])
def list_imports(request: ApiRequest) -> list[dict[str, Any]]:
    return [_out(job) for job in jobs_visible(request.user).select_related("owner")[:50]]


@router.post("/imports", response={201: ImportOut})
def create_import(request: ApiRequest, kind: Form[str], file: File[UploadedFile]) -> Status[dict[str, Any]]:
    job = actions.job_create(
        actor=request.user, kind=kind, chunks=file.chunks(), original_name=file.name or ""
    )
    return Status(201, _out(job))


@router.get("/imports/{job_id}", response=ImportOut)
def get_import(request: ApiRequest, job_id: int) -> dict[str, Any]:
    return _out(job_for(user=request.user, job_id=job_id))


@router.put("/imports/{job_id}/mapping", response=ImportOut)
def set_mapping(request: ApiRequest, job_id: int, payload: MappingIn) -> dict[str, Any]:
    """Save the mapping and options and start the dry run (poll GET /imports/{id})."""
    job = job_for(user=request.user, job_id=job_id)
    team = None
    if payload.team_id is not None:
        team = Team.objects.filter(pk=payload.team_id).first()
        if team is None:
            raise ActionError("Unknown team.", {"team_id": ["Unknown team."]})
    job = actions.job_configure(
        actor=request.user,
        job=job,
        mapping=payload.mapping,
        on_duplicate=payload.on_duplicate,
        visibility=payload.visibility,
        team=team,
    )
    return _out(job)


@router.post("/imports/{job_id}/dry-run", response=ImportOut)
def dry_run(request: ApiRequest, job_id: int) -> dict[str, Any]:
    """Run the dry run again with the current mapping."""
    job = job_for(user=request.user, job_id=job_id)
    job = actions.job_configure(
        actor=request.user,
        job=job,
        mapping=job.mapping,
        on_duplicate=job.on_duplicate,
        visibility=job.visibility,
    )
    return _out(job)


@router.post("/imports/{job_id}/start", response=ImportOut)
def start_import(request: ApiRequest, job_id: int) -> dict[str, Any]:
    job = job_for(user=request.user, job_id=job_id)
    return _out(actions.job_start(actor=request.user, job=job))


@router.get(
    "/imports/{job_id}/errors.csv",
    response={200: None},
    openapi_extra={"responses": {200: {"content": {"text/csv": {}}}}},
)
def import_errors(request: ApiRequest, job_id: int) -> Any:
    return error_report_response(job_for(user=request.user, job_id=job_id))


@router.get(
    "/exports/{kind}",
    response={200: None},
    tags=["Exports"],
    openapi_extra={
        "responses": {
            200: {
                "content": {
                    "text/csv": {},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                }
            }
        }
    },
)
def export_records(
    request: ApiRequest,
    kind: Literal["people", "organisations", "deals", "activities"],
    format: Literal["csv", "xlsx"] = "csv",
) -> Any:  # noqa: A002
    """The same rows as the list with the same filters (pass them as query parameters)."""
    return export.export_response(user=request.user, kind=kind, fmt=format, params=request.GET)
