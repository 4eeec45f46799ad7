"""Import and export screens: parse → authorise → act → render."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from rapport.accounts.models import Team
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.core.models import Visibility
from rapport.imports import actions, export
from rapport.imports.models import ImportKind, ImportStatus, OnDuplicate
from rapport.imports.selectors import job_for, job_status, jobs_visible
from rapport.web.editing import require_writer


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices, label="The file contains")
    file = forms.FileField(
        label="CSV or Excel (.xlsx) file", help_text="The first row must hold the column names."
    )


@login_required
def import_home(request: AuthedRequest) -> HttpResponse:
    form = UploadForm()
    if request.method == "POST":
        require_writer(request.user)
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = actions.job_create(
                    actor=request.user,
                    kind=form.cleaned_data["kind"],
                    chunks=upload.chunks(),
                    original_name=upload.name or "",
                )
            except ActionError as exc:
                form.add_error("file", exc.message)
            else:
                return redirect("import-job", pk=job.pk)
    jobs = list(jobs_visible(request.user).select_related("owner")[:30])
    status = 400 if form.errors else 200
    return render(request, "imports/home.html", {"nav": "imports", "form": form, "jobs": jobs}, status=status)


def _mapping_rows(job: actions.ImportJob) -> list[dict]:
    rows = []
    for i, header in enumerate(job.headers):
        rows.append(
            {
                "index": i,
                "header": header,
                "samples": [s[i] for s in job.samples if i < len(s) and s[i]][:3],
                "target": job.mapping[i] if i < len(job.mapping) else "",
            }
        )
    return rows


@login_required
def import_job(request: AuthedRequest, pk: int) -> HttpResponse:
    job = job_for(user=request.user, job_id=pk)
    errors: dict[str, list[str]] = {}
    message = ""
    if request.method == "POST":
        require_writer(request.user)
        mapping = [request.POST.get(f"col_{i}", "")[:60] for i in range(len(job.headers))]
        team = None
        team_id = request.POST.get("team", "")
        if team_id:
            team = Team.objects.filter(pk=team_id if team_id.isdigit() else 0).first()
            if team is None:
                errors["team"] = ["Unknown team."]
        if not errors:
            try:
                actions.job_configure(
                    actor=request.user,
                    job=job,
                    mapping=mapping,
                    on_duplicate=request.POST.get("on_duplicate", OnDuplicate.SKIP),
                    visibility=request.POST.get("visibility") or None,
                    team=team,
                )
            except ActionError as exc:
                message, errors = exc.message, exc.field_errors
                job.mapping = mapping
            else:
                return redirect("import-job", pk=job.pk)
    context = {
        "nav": "imports",
        "job": job,
        "status": job_status(job),
        "rows": _mapping_rows(job),
        "choices": actions.target_choices(job.kind),
        "on_duplicate_choices": OnDuplicate.choices,
        "visibility_choices": Visibility.choices,
        "teams": request.user.teams.all() if not request.user.is_admin else Team.objects.all(),
        "errors": errors,
        "message": message,
        "statuses": ImportStatus,
    }
    return render(request, "imports/job.html", context, status=400 if errors or message else 200)


@login_required
@require_POST
def import_start(request: AuthedRequest, pk: int) -> HttpResponse:
    require_writer(request.user)
    job = job_for(user=request.user, job_id=pk)
    try:
        actions.job_start(actor=request.user, job=job)
    except ActionError as exc:
        messages.error(request, exc.message)
    return redirect("import-job", pk=job.pk)


@login_required
@require_GET
def import_status(request: AuthedRequest, pk: int) -> JsonResponse:
    job = job_for(user=request.user, job_id=pk)
    return JsonResponse(job_status(job), headers={"Cache-Control": "no-store"})


def error_report_response(job: actions.ImportJob) -> FileResponse:
    path = actions.report_path(job)
    if not job.has_error_report or not path.exists():
        raise Http404("No error report")
    response = FileResponse(path.open("rb"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def import_errors(request: AuthedRequest, pk: int) -> FileResponse:
    return error_report_response(job_for(user=request.user, job_id=pk))


@login_required
@require_GET
def export_view(request: AuthedRequest, kind: str, fmt: str) -> HttpResponse:
    if kind not in export.KINDS or fmt not in export.FORMATS:
        raise Http404("Unknown export")
    try:
        return export.export_response(user=request.user, kind=kind, fmt=fmt, params=request.GET)
    except ActionError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
