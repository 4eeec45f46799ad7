"""Capture endpoints: quick add (parse, save), vCard export/import, duplicates and merges.

Parsing and planning live in rapport.people.quickadd/vcard; these endpoints only translate.
Saving re-parses the text, so a client cannot make the server save something other than what
the same text previews to."""

from typing import Any, Literal

from django.http import HttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from rapport.api.schemas import require_writer
from rapport.core.access import get_visible
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.people.duplicates import find_duplicates
from rapport.people.merge import organisation_merge, person_merge
from rapport.people.models import Organisation, Person, Source
from rapport.people.quickadd import ContactPlan, SaveOutcome, capture_save, parse_for, plan_capture
from rapport.people.selectors import organisations_visible, people_visible
from rapport.people.vcard import MAX_VCARD_BYTES, person_to_vcard, vcard_filename

router = Router(tags=["Capture"])


class TextIn(Schema):
    text: str


class IdentityPreview(Schema):
    kind: str
    value: str
    label: str
    new: bool


class OrganisationPreview(Schema):
    name: str
    id: int | None
    action: Literal["link", "create", ""]
    matched_by: str


class ContactPreview(Schema):
    label: str
    action: Literal["create", "update", "blocked", "invalid"]
    existing_person_id: int | None
    matched_by: str
    first_name: str
    last_name: str
    title: str
    organisation: OrganisationPreview
    identities: list[IdentityPreview]
    addresses: list[str]
    note: str
    tags: list[str]
    fill: dict[str, str]
    kept: dict[str, list[str]]
    errors: list[str]
    not_understood: list[str]
    skipped: list[str]


class ParseOut(Schema):
    kind: str
    ok: bool
    errors: list[str]
    contacts: list[ContactPreview]


class SavedOut(Schema):
    label: str
    person_id: int | None
    name: str
    created: bool
    errors: list[str]


class SaveOut(Schema):
    saved: int
    failed: int
    results: list[SavedOut]


class PersonRef(Schema):
    id: int
    name: str
    organisation: str | None
    email: str


class PairOut(Schema):
    a: PersonRef
    b: PersonRef
    reason: str
    score: int
    kind: str


class MergeIn(Schema):
    survivor_id: int
    other_id: int
    field_choices: dict[str, Literal["survivor", "other"]] = Field(default_factory=dict)


class MergeOut(Schema):
    id: int
    name: str
    merged_id: int


def _preview(plan: ContactPlan) -> dict[str, Any]:
    c = plan.contact
    new = {(i.kind, i.value) for i in plan.new_identities}
    org_name = plan.organisation.name if plan.organisation else c.organisation
    return {
        "label": c.label,
        "action": plan.action,
        "existing_person_id": plan.person.pk if plan.person else None,
        "matched_by": plan.matched_by,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "title": c.title,
        "organisation": {
            "name": org_name,
            "id": plan.organisation.pk if plan.organisation else None,
            "action": plan.organisation_action,
            "matched_by": plan.organisation_matched_by,
        },
        "identities": [
            {"kind": i.kind, "value": i.value, "label": i.label, "new": (i.kind, i.value) in new}
            for i in c.identities
        ],
        "addresses": [str(a) for a in c.addresses],
        "note": c.note,
        "tags": c.tags,
        "fill": {k: str(v) for k, v in plan.fill.items()},
        "kept": {k: list(v) for k, v in plan.kept.items()},
        "errors": c.errors + plan.messages if not plan.savable else c.errors,
        "not_understood": c.not_understood,
        "skipped": c.skipped,
    }


def _save_out(outcomes: list[SaveOutcome]) -> dict[str, Any]:
    return {
        "saved": sum(1 for o in outcomes if o.person is not None),
        "failed": sum(1 for o in outcomes if o.person is None),
        "results": [
            {
                "label": o.label,
                "person_id": o.person.pk if o.person else None,
                "name": o.person.full_name if o.person else "",
                "created": o.created,
                "errors": o.errors,
            }
            for o in outcomes
        ],
    }


@router.post("/quick-add/parse", response=ParseOut)
def quick_add_parse(request: ApiRequest, payload: TextIn) -> dict[str, Any]:
    """What saving this text would do: parsed fields, identities, and existing people or
    organisations it would be linked to. Nothing is written."""
    result = parse_for(payload.text)
    plans = plan_capture(request.auth, result) if not result.errors else []
    return {
        "kind": result.kind,
        "ok": result.ok and all(p.savable for p in plans),
        "errors": result.errors,
        "contacts": [_preview(p) for p in plans],
    }


@router.post("/quick-add", response={201: SaveOut})
def quick_add_save(request: ApiRequest, payload: TextIn) -> Status:
    """Create (or add to) the people in one line, a signature or pasted vCards. A line or
    signature with any error saves nothing (400)."""
    user = require_writer(request)
    outcomes = capture_save(actor=user, text=payload.text, source=Source.API)
    return Status(201, _save_out(outcomes))


@router.get("/people/{person_id}/vcard", response={200: None})
def person_vcard(request: ApiRequest, person_id: int) -> HttpResponse:
    qs = (
        people_visible(request.auth)
        .select_related("organisation")
        .prefetch_related("identities", "addresses", "tags")
    )
    person = get_visible(Person, request.auth, person_id, qs)
    response = HttpResponse(person_to_vcard(person), content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{vcard_filename(person)}"'
    return response


@router.post(
    "/vcard/import",
    response=SaveOut,
    openapi_extra={
        "requestBody": {"content": {"text/vcard": {"schema": {"type": "string"}}}, "required": True}
    },
)
def vcard_import(request: ApiRequest) -> dict[str, Any]:
    """Import vCards sent as the raw request body (`Content-Type: text/vcard`). Each card is
    saved on its own; failed cards are listed with their errors."""
    user = require_writer(request)
    if len(request.body) > MAX_VCARD_BYTES:
        raise ActionError(f"The body is larger than {MAX_VCARD_BYTES // (1024 * 1024)} MB.")
    try:
        text = request.body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ActionError("Send the vCards as UTF-8 text.", {"body": ["Not UTF-8."]})
    outcomes = capture_save(actor=user, text=text, source=Source.IMPORT, mode="vcard")
    return _save_out(outcomes)


class DuplicateParams(Schema):
    limit: int = Field(50, ge=1, le=200)


@router.get("/duplicates", response=list[PairOut])
def duplicates(request: ApiRequest, params: Query[DuplicateParams]) -> list[dict[str, Any]]:
    """Likely duplicate pairs among the people the caller may see, best first."""

    def ref(p: Person) -> dict[str, Any]:
        return {
            "id": p.pk,
            "name": p.full_name,
            "organisation": p.organisation.name if p.organisation else None,
            "email": getattr(p, "primary_email", ""),
        }

    pairs = find_duplicates(user=request.auth, limit=params.limit)
    return [
        {"a": ref(p.a), "b": ref(p.b), "reason": p.reason, "score": p.score, "kind": p.kind} for p in pairs
    ]


@router.post("/people/merge", response=MergeOut)
def people_merge(request: ApiRequest, payload: MergeIn) -> dict[str, Any]:
    """Merge `other_id` into `survivor_id`; both must be editable by the caller (else 404)."""
    user = require_writer(request)
    survivor = get_visible(Person, user, payload.survivor_id, people_visible(user))
    other = get_visible(Person, user, payload.other_id, people_visible(user))
    merged = person_merge(
        actor=user, survivor=survivor, other=other, field_choices=dict(payload.field_choices)
    )
    return {"id": merged.pk, "name": merged.full_name, "merged_id": other.pk}


@router.post("/organisations/merge", response=MergeOut)
def organisations_merge(request: ApiRequest, payload: MergeIn) -> dict[str, Any]:
    """Merge organisation `other_id` into `survivor_id` (people, deals, orders, activities,
    domains and subsidiaries move)."""
    user = require_writer(request)
    survivor = get_visible(Organisation, user, payload.survivor_id, organisations_visible(user))
    other = get_visible(Organisation, user, payload.other_id, organisations_visible(user))
    merged = organisation_merge(
        actor=user, survivor=survivor, other=other, field_choices=dict(payload.field_choices)
    )
    return {"id": merged.pk, "name": merged.name, "merged_id": other.pk}
