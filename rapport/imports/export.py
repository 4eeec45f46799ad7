"""Exports of people, organisations, deals and activities as CSV or XLSX.

Rows come from the same selectors and filters as the lists, page by page with the keyset
cursor, so an export shows exactly what the list shows and a million rows never sit in
memory. Related names (organisation, person, deal) appear only when the user may see that
record too. Text a spreadsheet would run as a formula is escaped with a leading apostrophe."""

import csv
import datetime as dt
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone

from rapport.accounts.models import User
from rapport.activities.models import ActivityKind
from rapport.activities.selectors import activities_visible
from rapport.core.access import visible
from rapport.core.errors import ActionError
from rapport.core.pagination import keyset_page
from rapport.imports.engine import spreadsheet_safe
from rapport.people.models import Organisation, OrganisationDomain, Person
from rapport.people.selectors import OrgFilters, PersonFilters, organisation_list, person_list
from rapport.sales.models import Deal
from rapport.sales.selectors import DealFilters, deal_list

KINDS = ("people", "organisations", "deals", "activities")
FORMATS = ("csv", "xlsx")
PAGE = 200
XLSX_CELL_MAX = 32767


def xlsx_max_rows() -> int:
    return int(getattr(settings, "RAPPORT_EXPORT_XLSX_MAX_ROWS", 100_000))


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _bool(value: str | None) -> bool | None:
    return {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}.get(
        (value or "").strip().lower()
    )


def _owner(user: User, params: QueryDict) -> int | None:
    raw = params.get("owner", "")
    return user.pk if raw == "me" else _int(raw)


def _visible_ids(model: Any, user: User, ids: set[int | None]) -> set[int]:
    wanted = {pk for pk in ids if pk is not None}
    if not wanted:
        return set()
    return set(visible(model, user).filter(pk__in=wanted).values_list("id", flat=True))


def _tags(model: Any, field: str, ids: list[int]) -> dict[int, list[str]]:
    through = model.tags.through
    out: dict[int, list[str]] = {}
    for pk, name in (
        through.objects.filter(**{f"{field}__in": ids}).values_list(field, "tag__name").order_by("tag__name")
    ):
        out.setdefault(pk, []).append(name)
    return out


def _date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    return value


# --- rows per kind (each starts with the header row) ---------------------------------------


def _people_rows(user: User, params: QueryDict) -> Iterator[list[Any]]:
    filters = PersonFilters(
        q=params.get("q", "")[:200].strip(),
        organisation=_int(params.get("organisation")),
        tag=params.get("tag", "")[:60].strip(),
        owner=_owner(user, params),
        vip=_bool(params.get("vip")),
        needs_review=_bool(params.get("review")),
        sort=params.get("sort", "name"),
    )
    page = person_list(user=user, filters=filters, limit=PAGE, with_total=False)  # raises before streaming
    yield [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "organisation",
        "tags",
        "vip",
        "owner",
        "visibility",
        "created_at",
    ]
    while True:
        people: list[Person] = page.items
        orgs = _visible_ids(Organisation, user, {p.organisation_id for p in people})
        tags = _tags(Person, "person_id", [p.pk for p in people])
        for p in people:
            yield [
                p.pk,
                p.first_name,
                p.last_name,
                p.primary_email,
                p.primary_phone,
                p.title,
                p.organisation.name if p.organisation and p.organisation_id in orgs else "",
                ", ".join(tags.get(p.pk, [])),
                "yes" if p.is_vip else "",
                str(p.owner),
                p.visibility,
                _date(p.created_at),
            ]
        if not page.next_cursor:
            return
        page = person_list(user=user, filters=filters, cursor=page.next_cursor, limit=PAGE, with_total=False)


def _organisation_rows(user: User, params: QueryDict) -> Iterator[list[Any]]:
    filters = OrgFilters(
        q=params.get("q", "")[:200].strip(),
        industry=params.get("industry", "")[:100].strip(),
        tag=params.get("tag", "")[:60].strip(),
        owner=_owner(user, params),
        sort=params.get("sort", "name"),
    )
    page = organisation_list(user=user, filters=filters, limit=PAGE, with_total=False)
    yield [
        "id",
        "name",
        "industry",
        "website",
        "phone",
        "employees",
        "domains",
        "tags",
        "owner",
        "visibility",
        "created_at",
    ]
    while True:
        ids = [o.pk for o in page.items]
        tags = _tags(Organisation, "organisation_id", ids)
        domains: dict[int, list[str]] = {}
        for pk, domain in (
            OrganisationDomain.objects.filter(organisation_id__in=ids)
            .values_list("organisation_id", "domain")
            .order_by("domain")
        ):
            domains.setdefault(pk, []).append(domain)
        for o in page.items:
            yield [
                o.pk,
                o.name,
                o.industry,
                o.website,
                o.phone,
                o.employees,
                ", ".join(domains.get(o.pk, [])),
                ", ".join(tags.get(o.pk, [])),
                str(o.owner),
                o.visibility,
                _date(o.created_at),
            ]
        if not page.next_cursor:
            return
        page = organisation_list(
            user=user, filters=filters, cursor=page.next_cursor, limit=PAGE, with_total=False
        )


def _deal_rows(user: User, params: QueryDict) -> Iterator[list[Any]]:
    filters = DealFilters(
        q=params.get("q", "")[:200].strip(),
        status=params.get("status", ""),
        pipeline=_int(params.get("pipeline")),
        stage=_int(params.get("stage")),
        owner=_owner(user, params),
        organisation=_int(params.get("organisation")),
        sort=params.get("sort", "-created"),
    )
    page = deal_list(user=user, filters=filters, limit=PAGE, with_total=False)
    yield [
        "id",
        "name",
        "pipeline",
        "stage",
        "status",
        "amount",
        "currency",
        "expected_close",
        "organisation",
        "owner",
        "visibility",
        "created_at",
    ]
    while True:
        deals: list[Deal] = page.items
        orgs = _visible_ids(Organisation, user, {d.organisation_id for d in deals})
        for d in deals:
            yield [
                d.pk,
                d.name,
                d.pipeline.name,
                d.stage.name,
                d.status,
                d.amount,
                d.currency,
                d.expected_close,
                d.organisation.name if d.organisation and d.organisation_id in orgs else "",
                str(d.owner),
                d.visibility,
                _date(d.created_at),
            ]
        if not page.next_cursor:
            return
        page = deal_list(user=user, filters=filters, cursor=page.next_cursor, limit=PAGE, with_total=False)


def _activity_rows(user: User, params: QueryDict) -> Iterator[list[Any]]:
    # The same filters as the activities list (rapport.activities.views.activity_list_view).
    qs = activities_visible(user)
    kind = params.get("kind", "")
    if kind in ActivityKind.values:
        qs = qs.filter(kind=kind)
    if params.get("mine") == "1":
        qs = qs.filter(owner=user)
    if params.get("open") == "1":
        qs = qs.filter(kind=ActivityKind.TASK, done_at__isnull=True)
    qs = qs.select_related("owner", "person", "organisation", "deal")
    order = ["-occurred_at", "-id"]
    page = keyset_page(qs, order, None, PAGE)
    yield [
        "id",
        "kind",
        "occurred_at",
        "subject",
        "body",
        "person",
        "organisation",
        "deal",
        "owner",
        "due_at",
        "done_at",
    ]
    while True:
        items = page.items
        people = _visible_ids(Person, user, {a.person_id for a in items})
        orgs = _visible_ids(Organisation, user, {a.organisation_id for a in items})
        deals = _visible_ids(Deal, user, {a.deal_id for a in items})
        for a in items:
            yield [
                a.pk,
                a.kind,
                _date(a.occurred_at),
                a.subject,
                a.body,
                a.person.full_name if a.person and a.person_id in people else "",
                a.organisation.name if a.organisation and a.organisation_id in orgs else "",
                a.deal.name if a.deal and a.deal_id in deals else "",
                str(a.owner),
                _date(a.due_at),
                _date(a.done_at),
            ]
        if not page.next_cursor:
            return
        page = keyset_page(qs, order, page.next_cursor, PAGE)


ROWS = {
    "people": _people_rows,
    "organisations": _organisation_rows,
    "deals": _deal_rows,
    "activities": _activity_rows,
}


def export_rows(*, user: User, kind: str, params: QueryDict) -> Iterator[list[Any]]:
    """Header row, then one row per record. Bad filters raise ActionError before any row."""
    if kind not in ROWS:
        raise ActionError("Unknown export.", {"kind": [f"Choose one of {', '.join(KINDS)}."]})
    rows = ROWS[kind](user, params)
    header = next(rows)  # runs the first query, so a bad filter fails here and not mid-stream

    def all_rows() -> Iterator[list[Any]]:
        yield header
        yield from rows

    return all_rows()


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return spreadsheet_safe(value)


def _filename(kind: str, fmt: str) -> str:
    return f"rapport-{kind}-{timezone.localdate().isoformat()}.{fmt}"


def _harden(response: HttpResponse | StreamingHttpResponse, kind: str, fmt: str) -> Any:
    response["Content-Disposition"] = f'attachment; filename="{_filename(kind, fmt)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def csv_response(*, user: User, kind: str, params: QueryDict) -> StreamingHttpResponse:
    rows = export_rows(user=user, kind=kind, params=params)
    writer = csv.writer(_Echo())

    def stream() -> Iterator[str]:
        yield "\ufeff"  # so Excel reads UTF-8
        for row in rows:
            yield writer.writerow([_csv_value(v) for v in row])

    return _harden(StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8"), kind, "csv")


def _xlsx_value(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_CELL_MAX]
        return spreadsheet_safe(value)
    return value


def xlsx_response(*, user: User, kind: str, params: QueryDict) -> FileResponse:
    """Write-only workbook in a temporary file, capped at RAPPORT_EXPORT_XLSX_MAX_ROWS rows: a
    workbook must be complete before it can be sent, and Excel is not the tool for more."""
    from openpyxl import Workbook

    rows = export_rows(user=user, kind=kind, params=params)
    cap = xlsx_max_rows()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(kind.capitalize())
    n = -1
    for row in rows:
        if n >= cap:
            ws.append([f"Only the first {cap:,} rows are in this file. Download CSV for the full list."])
            break
        ws.append([_xlsx_value(v) for v in row])
        n += 1
    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    wb.save(out)
    out.seek(0)
    response = FileResponse(
        out, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return _harden(response, kind, "xlsx")


def export_response(*, user: User, kind: str, fmt: str, params: QueryDict) -> Any:
    if fmt not in FORMATS:
        raise ActionError("Unknown format.", {"format": ["Choose csv or xlsx."]})
    if fmt == "csv":
        return csv_response(user=user, kind=kind, params=params)
    return xlsx_response(user=user, kind=kind, params=params)
