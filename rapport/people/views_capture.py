"""Capture screens: quick add, vCard import/export, duplicate suggestions and merging.

Thin views: parse the request, load records through the selectors (anything invisible is a
404), call quickadd/vcard/duplicates/merge, render. Saving always re-parses the submitted
text rather than trusting a preview sent back by the browser."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from rapport.core.access import can_edit, get_visible
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.people.duplicates import duplicate_dismiss, duplicates_for, find_duplicates
from rapport.people.merge import ORG_MERGE_FIELDS, PERSON_MERGE_FIELDS, organisation_merge, person_merge
from rapport.people.models import Organisation, Person, Source
from rapport.people.quickadd import MAX_TEXT_CHARS, capture_save, parse_for, plan_capture
from rapport.people.selectors import organisations_visible, people_visible, person_detail
from rapport.people.vcard import MAX_VCARD_BYTES, people_to_vcards, person_to_vcard, vcard_filename
from rapport.web.forms import safe_next

MAX_EXPORT_IDS = 500
PREVIEW_ROWS = 300


def _errors_of(exc: ActionError) -> list[str]:
    details = [m for msgs in exc.field_errors.values() for m in msgs]
    return [exc.message] + [d for d in details if d not in exc.message]


# --- quick add -------------------------------------------------------------------------------


@login_required
def quick_add_view(request: AuthedRequest) -> HttpResponse:
    text, result, plans, errors = "", None, None, []
    if request.method == "POST":
        text = request.POST.get("text", "")
        result = parse_for(text)
        plans = plan_capture(request.user, result) if not result.errors else None
        if request.POST.get("step") == "save":
            if not request.user.can_write:
                raise PermissionDenied("Your role is read-only.")
            try:
                outcomes = capture_save(actor=request.user, text=text, source=Source.QUICK_ADD)
            except ActionError as exc:
                errors = _errors_of(exc)
            else:
                saved = [(o.created, o.person) for o in outcomes if o.person is not None]
                failed = [o for o in outcomes if o.person is None]
                for created, person in saved:
                    verb = "Added" if created else "Updated"
                    messages.success(request, f"{verb} {person.full_name}.")
                for o in failed:
                    messages.error(request, f"{o.label}: {' '.join(o.errors)}")
                if len(saved) == 1 and not failed:
                    return redirect("person-detail", pk=saved[0][1].pk)
                return redirect("quick-add")
    return render(
        request,
        "people/capture/quick_add.html",
        {
            "text": text,
            "result": result,
            "plans": plans,
            "errors": errors,
            "max_chars": MAX_TEXT_CHARS,
            "can_save": bool(plans) and request.user.can_write and any(p.savable for p in plans or []),
            "nav": "people",
        },
    )


# --- vCard import / export -------------------------------------------------------------------


def _decode_upload(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # vCard 2.1 files from old phones are often Windows-1252
        return data.decode("cp1252", errors="replace")


@login_required
def vcard_import_view(request: AuthedRequest) -> HttpResponse:
    context: dict[str, Any] = {"max_mb": MAX_VCARD_BYTES // (1024 * 1024), "nav": "people"}
    if request.method != "POST":
        return render(request, "people/capture/vcard_import.html", context)
    if not request.user.can_write:
        raise PermissionDenied("Your role is read-only.")
    if request.POST.get("step") == "save":
        text = request.POST.get("text", "")
        try:
            outcomes = capture_save(actor=request.user, text=text, source=Source.IMPORT, mode="vcard")
        except ActionError as exc:
            context["errors"] = _errors_of(exc)
            return render(request, "people/capture/vcard_import.html", context, status=400)
        context["outcomes"] = outcomes
        context["saved"] = sum(1 for o in outcomes if o.person is not None)
        context["failed"] = sum(1 for o in outcomes if o.person is None)
        return render(request, "people/capture/vcard_result.html", context)
    upload = request.FILES.get("file")
    if upload is None:
        context["errors"] = ["Choose a .vcf file to upload."]
        return render(request, "people/capture/vcard_import.html", context, status=400)
    if upload.size is None or upload.size > MAX_VCARD_BYTES:
        context["errors"] = [f"The file is larger than {context['max_mb']} MB; split it into smaller files."]
        return render(request, "people/capture/vcard_import.html", context, status=400)
    text = _decode_upload(upload.read(MAX_VCARD_BYTES + 1))
    # The content decides, never the file name.
    if "BEGIN:VCARD" not in text[:4096].upper():
        context["errors"] = ["This is not a vCard file (it does not start with BEGIN:VCARD)."]
        return render(request, "people/capture/vcard_import.html", context, status=400)
    result = parse_for(text, "vcard")
    if result.errors and not result.contacts:
        context["errors"] = result.errors
        return render(request, "people/capture/vcard_import.html", context, status=400)
    plans = plan_capture(request.user, result)
    context.update(
        {
            "text": text,
            "result": result,
            "plans": plans[:PREVIEW_ROWS],
            "more": max(0, len(plans) - PREVIEW_ROWS),
            "counts": {
                "create": sum(1 for p in plans if p.action == "create"),
                "update": sum(1 for p in plans if p.action == "update"),
                "skip": sum(1 for p in plans if not p.savable),
            },
            "can_save": any(p.savable for p in plans),
        }
    )
    return render(request, "people/capture/vcard_import.html", context)


def _vcard_response(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _export_queryset(qs: Any) -> Any:
    return qs.select_related("organisation").prefetch_related("identities", "addresses", "tags")


@login_required
def person_vcard_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = get_visible(Person, request.user, pk, _export_queryset(people_visible(request.user)))
    return _vcard_response(person_to_vcard(person), vcard_filename(person))


@login_required
def people_vcard_view(request: AuthedRequest) -> HttpResponse:
    raw = ",".join(request.GET.getlist("ids"))
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and 0 < int(part) < 2**63:
            ids.append(int(part))
    ids = list(dict.fromkeys(ids))
    if not ids:
        return HttpResponse("Give the people to export as ?ids=1,2,3", status=400, content_type="text/plain")
    if len(ids) > MAX_EXPORT_IDS:
        return HttpResponse(
            f"At most {MAX_EXPORT_IDS} people per export (asked for {len(ids)}).",
            status=400,
            content_type="text/plain",
        )
    people = list(
        _export_queryset(people_visible(request.user).filter(pk__in=ids)).order_by("sort_key", "id")
    )
    if not people:
        raise Http404("Not found")
    return _vcard_response(people_to_vcards(people), "people.vcf")


# --- duplicates ------------------------------------------------------------------------------


def _with_edit_flags(request: AuthedRequest, pairs: list) -> list:
    for pair in pairs:
        pair.editable = can_edit(request.user, pair.a) and can_edit(request.user, pair.b)
    return pairs


@login_required
def duplicates_view(request: AuthedRequest) -> HttpResponse:
    pairs = _with_edit_flags(request, find_duplicates(user=request.user, limit=100))
    return render(
        request, "people/capture/duplicates.html", {"pairs": pairs, "nav": "people", "next": request.path}
    )


@login_required
def person_duplicates_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = person_detail(user=request.user, person_id=pk)
    pairs = _with_edit_flags(request, duplicates_for(user=request.user, person=person))
    return render(
        request,
        "people/capture/duplicates.html",
        {"pairs": pairs, "person": person, "nav": "people", "next": request.path},
    )


@login_required
@require_POST
def duplicate_dismiss_view(request: AuthedRequest) -> HttpResponse:
    if not request.user.can_write:
        raise PermissionDenied("Your role is read-only.")
    a = get_visible(Person, request.user, request.POST.get("a"), people_visible(request.user))
    b = get_visible(Person, request.user, request.POST.get("b"), people_visible(request.user))
    try:
        duplicate_dismiss(actor=request.user, a=a, b=b)
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{a.full_name} and {b.full_name} will not be suggested again.")
    return redirect(safe_next(request, reverse("duplicates")))


# --- merge -----------------------------------------------------------------------------------


def _editable_pair(request: AuthedRequest, qs: Any, model: type, a: int, b: int) -> tuple[Any, Any]:
    first = get_visible(model, request.user, a, qs)
    second = get_visible(model, request.user, b, qs)
    if not (can_edit(request.user, first) and can_edit(request.user, second)) or first.pk == second.pk:
        raise Http404("Not found")
    return first, second


def _blank(value: Any) -> bool:
    return value is None or value == "" or value is False


def _field_rows(first: Any, second: Any, fields: list[str], data: Any = None) -> list[dict[str, Any]]:
    rows = []
    for name in fields:
        field = first._meta.get_field(name)
        va, vb = getattr(first, name), getattr(second, name)
        default = "b" if _blank(va) and not _blank(vb) else "a"
        chosen = (data or {}).get(f"choice_{name}", default)
        rows.append(
            {
                "name": name,
                "label": str(field.verbose_name).capitalize(),
                "a": "" if va is None else ("yes" if va is True else "no" if va is False else va),
                "b": "" if vb is None else ("yes" if vb is True else "no" if vb is False else vb),
                "same": va == vb,
                "chosen": chosen if chosen in ("a", "b") else default,
            }
        )
    custom_keys = sorted(set(first.custom or {}) | set(second.custom or {}))
    for key in custom_keys:
        if key == "not_duplicates":
            continue
        va, vb = (first.custom or {}).get(key), (second.custom or {}).get(key)
        default = "b" if va is None else "a"
        chosen = (data or {}).get(f"choice_custom:{key}", default)
        rows.append(
            {
                "name": f"custom:{key}",
                "label": f"Custom: {key}",
                "a": "" if va is None else va,
                "b": "" if vb is None else vb,
                "same": va == vb,
                "chosen": chosen if chosen in ("a", "b") else default,
            }
        )
    return rows


def _choices_from_post(post: Any, rows: list[dict[str, Any]], survivor_is_a: bool) -> dict[str, str]:
    choices = {}
    for row in rows:
        picked = post.get(f"choice_{row['name']}", row["chosen"])
        if picked not in ("a", "b") or row["same"]:
            continue
        choices[row["name"]] = "survivor" if (picked == "a") == survivor_is_a else "other"
    return choices


def _person_counts(person: Person) -> dict[str, int]:
    return {
        "identities": person.identities.count(),
        "activities": person.activities.count(),
        "deals": person.deal_roles.count(),
        "relationships": person.relationships_out.count() + person.relationships_in.count(),
    }


@login_required
def merge_people_view(request: AuthedRequest, a: int, b: int) -> HttpResponse:
    qs = people_visible(request.user).select_related("organisation").prefetch_related("identities", "tags")
    first, second = _editable_pair(request, qs, Person, a, b)
    data = request.POST if request.method == "POST" else None
    rows = _field_rows(first, second, PERSON_MERGE_FIELDS, data)
    errors: list[str] = []
    if request.method == "POST":
        keep = request.POST.get("keep", "a")
        survivor, other = (first, second) if keep != "b" else (second, first)
        try:
            merged = person_merge(
                actor=request.user,
                survivor=survivor,
                other=other,
                field_choices=_choices_from_post(request.POST, rows, keep != "b"),
            )
        except ActionError as exc:
            errors = _errors_of(exc)
        else:
            messages.success(request, f"Merged {other.full_name} into {merged.full_name}.")
            return redirect("person-detail", pk=merged.pk)
    return render(
        request,
        "people/capture/merge.html",
        {
            "kind": "people",
            "first": first,
            "second": second,
            "first_name": first.full_name,
            "second_name": second.full_name,
            "first_url": f"/people/{first.pk}/",
            "second_url": f"/people/{second.pk}/",
            "rows": rows,
            "errors": errors,
            "counts": [_person_counts(first), _person_counts(second)],
            "keep": request.POST.get("keep", "a") if data else "a",
            "nav": "people",
        },
        status=400 if errors else 200,
    )


@login_required
def merge_organisations_view(request: AuthedRequest, a: int, b: int) -> HttpResponse:
    qs = organisations_visible(request.user).select_related("parent")
    first, second = _editable_pair(request, qs, Organisation, a, b)
    data = request.POST if request.method == "POST" else None
    rows = _field_rows(first, second, ORG_MERGE_FIELDS, data)
    errors: list[str] = []
    if request.method == "POST":
        keep = request.POST.get("keep", "a")
        survivor, other = (first, second) if keep != "b" else (second, first)
        try:
            merged = organisation_merge(
                actor=request.user,
                survivor=survivor,
                other=other,
                field_choices=_choices_from_post(request.POST, rows, keep != "b"),
            )
        except ActionError as exc:
            errors = _errors_of(exc)
        else:
            messages.success(request, f"Merged {other.name} into {merged.name}.")
            return redirect("organisation-detail", pk=merged.pk)
    counts = [
        {
            "people": o.people.filter(merged_into__isnull=True).count(),
            "deals": o.deals.count(),
            "orders": o.orders.count(),
        }
        for o in (first, second)
    ]
    return render(
        request,
        "people/capture/merge.html",
        {
            "kind": "organisations",
            "first": first,
            "second": second,
            "first_name": first.name,
            "second_name": second.name,
            "first_url": f"/organisations/{first.pk}/",
            "second_url": f"/organisations/{second.pk}/",
            "rows": rows,
            "errors": errors,
            "counts": counts,
            "keep": request.POST.get("keep", "a") if data else "a",
            "nav": "orgs",
        },
        status=400 if errors else 200,
    )
