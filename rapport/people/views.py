"""Web screens for people and organisations: parse → authorise (selectors) → act → render.

A record the user cannot see is a 404 everywhere; one they can see but not change shows no
edit controls, and a write to it answers 403 without touching anything."""

from typing import Any, TypedDict, Unpack

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from rapport.accounts.models import User
from rapport.activities.forms import ActivityForm
from rapport.activities.selectors import timeline
from rapport.audit.actions import history_for
from rapport.core.access import can_edit, can_see, visible
from rapport.core.errors import ActionError, ConflictError
from rapport.core.http import AuthedRequest, int_param
from rapport.core.pagination import Page
from rapport.people import actions
from rapport.people.forms import (
    IdentityForm,
    OrganisationEditForm,
    OrganisationForm,
    PersonEditForm,
    PersonForm,
    RelationshipForm,
    apply_action_error,
    identity_pairs,
    lookup_label,
    split_tags,
)
from rapport.people.models import (
    Identity,
    IdentityKind,
    Organisation,
    Person,
    Relationship,
)
from rapport.people.selectors import (
    ORG_SORTS,
    PERSON_SORTS,
    OrgFilters,
    PersonFilters,
    attach_primary_identities,
    organisation_detail,
    organisation_list,
    organisations_visible,
    people_visible,
    person_detail,
    person_list,
)
from rapport.sales.models import DealParticipant, Order, Product
from rapport.sales.selectors import deals_visible

PAGE_SIZE = 50


# --- small parsing helpers --------------------------------------------------------------


def bool_param(value: str | None) -> bool | None:
    return {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}.get(
        (value or "").strip().lower()
    )


def owner_param(request: AuthedRequest) -> int | None:
    raw = request.GET.get("owner", "")
    return request.user.pk if raw == "me" else int_param(raw)


def query_without(request: HttpRequest, *keys: str) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


def owner_choices() -> list[User]:
    # Users are few (people and organisations are many): a bounded select is fine here.
    return list(User.objects.filter(is_active=True).order_by("first_name", "username")[:300])


def require_writer(user: User) -> None:
    if not user.can_write:
        raise PermissionDenied("Your role is read-only.")


def conflict_rows(form: Any, current_initial: dict[str, Any]) -> list[dict[str, str]]:
    """Field by field: what is saved now versus what this user typed, where they differ."""
    rows = []
    for name, field in form.fields.items():
        if name == "version":
            continue
        theirs = current_initial.get(name, "")
        mine = form.data.get(name, "")
        if isinstance(field, forms.BooleanField):
            mine, theirs = ("yes" if mine else "no"), ("yes" if theirs else "no")
        theirs_s = "" if theirs is None else str(theirs)
        if theirs_s != str(mine or ""):
            rows.append(
                {
                    "label": field.label or name.replace("_", " ").capitalize(),
                    "theirs": theirs_s,
                    "mine": mine,
                }
            )
    return rows


def rebound_with_version(form_class: type, request: HttpRequest, version: int, **kwargs: Any) -> Any:
    """The user's own input again, now carrying the current version so a deliberate second
    save replaces the other person's values instead of failing again."""
    data = request.POST.copy()
    data["version"] = str(version)
    form = form_class(data, **kwargs)
    form.is_valid()
    return form


def mark_visible_links(user: User, activity: Any) -> None:
    """An activity shared with everyone can hang off a private deal or person: link only
    to what the user may see, so names of hidden records never show."""
    for name in ("person", "organisation", "deal"):
        target = getattr(activity, name)
        setattr(activity, f"{name}_visible", target is not None and can_see(user, target))


class TimelineTarget(TypedDict, total=False):
    person_id: int
    organisation_id: int
    deal_id: int


def timeline_for(user: User, cursor: str | None, **target: Unpack[TimelineTarget]) -> Page:
    """A page of a record's timeline; a stale or mangled cursor shows the newest page."""
    try:
        page = timeline(user=user, cursor=cursor or None, limit=20, **target)
    except ActionError:
        page = timeline(user=user, limit=20, **target)
    for activity in page.items:
        mark_visible_links(user, activity)
    return page


# --- people -----------------------------------------------------------------------------


@login_required
def person_list_view(request: AuthedRequest) -> HttpResponse:
    sort = request.GET.get("sort", "name")
    filters = PersonFilters(
        q=request.GET.get("q", "")[:200].strip(),
        organisation=int_param(request.GET.get("organisation")),
        tag=request.GET.get("tag", "")[:60].strip(),
        owner=owner_param(request),
        vip=bool_param(request.GET.get("vip")),
        needs_review=bool_param(request.GET.get("review")),
        sort=sort,
    )
    error = None
    try:
        page = person_list(
            user=request.user, filters=filters, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE
        )
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    for person in page.items:
        # A visible person may work at a private organisation: its name is not shown then.
        person.org_visible = person.organisation is not None and can_see(request.user, person.organisation)  # type: ignore[attr-defined]
    org = None
    if filters.organisation:
        org = organisations_visible(request.user).filter(pk=filters.organisation).only("id", "name").first()
    context = {
        "nav": "people",
        "page": page,
        "filters": filters,
        "filter_org": org,
        "error": error,
        "sorts": list(PERSON_SORTS),
        "owners": owner_choices(),
        "owner_raw": request.GET.get("owner", ""),
        "export_query": query_without(request, "cursor"),
        "is_first_page": not request.GET.get("cursor"),
    }
    return render(request, "people/person_list.html", context, status=400 if error else 200)


def _identity_rows(request: HttpRequest) -> list[dict[str, str]]:
    if request.method == "POST":
        rows = [
            {"kind": k, "value": v}
            for k, v in zip(
                request.POST.getlist("identity_kind")[:50],
                request.POST.getlist("identity_value")[:50],
                strict=False,
            )
            if v.strip()
        ]
    else:
        rows = []
    while len(rows) < 3:
        rows.append({"kind": ["email", "phone", "x"][len(rows)], "value": ""})
    return rows


@login_required
def person_create_view(request: AuthedRequest) -> HttpResponse:
    require_writer(request.user)
    identity_errors: list[str] = []
    if request.method == "POST":
        form = PersonForm(request.POST, user=request.user)
        try:
            pairs = identity_pairs(request.POST)
        except ActionError as exc:
            pairs, identity_errors = [], exc.field_errors.get("identities", [exc.message])
        if form.is_valid() and not identity_errors:
            try:
                person = actions.person_create(
                    actor=request.user,
                    identities=pairs,
                    tags=split_tags(form.cleaned_data["tags"]),
                    **form.person_data(),
                )
            except ActionError as exc:
                identity_errors = exc.field_errors.pop("identities", [])
                apply_action_error(form, exc)
            else:
                messages.success(request, f"Added {person.full_name}.")
                return redirect("person-detail", pk=person.pk)
    else:
        initial: dict[str, Any] = {}
        org_id = int_param(request.GET.get("organisation"))
        if org_id:
            org = organisations_visible(request.user).filter(pk=org_id).first()
            initial["organisation"] = lookup_label(org)
        form = PersonForm(initial=initial, user=request.user)
    context = {
        "nav": "people",
        "form": form,
        "identity_rows": _identity_rows(request),
        "identity_errors": identity_errors,
        "identity_kinds": IdentityKind.choices,
    }
    return render(
        request, "people/person_form.html", context, status=400 if form.errors or identity_errors else 200
    )


def _merged_redirect(request: AuthedRequest, pk: int) -> HttpResponse | None:
    survivor = (
        visible(Person, request.user)
        .filter(pk=pk, merged_into__isnull=False)
        .values_list("merged_into_id", flat=True)
        .first()
    )
    return redirect("person-detail", pk=survivor) if survivor else None


@login_required
def person_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    user = request.user
    try:
        person = person_detail(user=user, person_id=pk)
    except Http404:
        if (response := _merged_redirect(request, pk)) is not None:
            return response
        raise
    editable = can_edit(user, person)
    rels_out = Relationship.objects.filter(from_person=person).select_related("to_person")[:100]
    rels_in = Relationship.objects.filter(to_person=person).select_related("from_person")[:100]
    relationships = [
        {"rel": r, "other": r.to_person, "direction": "out"} for r in rels_out if can_see(user, r.to_person)
    ] + [
        {"rel": r, "other": r.from_person, "direction": "in"} for r in rels_in if can_see(user, r.from_person)
    ]
    deal_roles = [
        p
        for p in DealParticipant.objects.filter(person=person)
        .select_related("deal__stage", "deal__organisation")
        .order_by("-deal__created_at")[:50]
        if can_see(user, p.deal)
    ]
    tl = timeline_for(user, request.GET.get("tl"), person_id=person.pk)
    context = {
        "nav": "people",
        "person": person,
        "org_visible": person.organisation is not None and can_see(user, person.organisation),
        "can_edit": editable,
        "can_write": user.can_write,
        "identities": list(person.identities.all()),
        "employments": [e for e in person.employments.all() if can_see(user, e.organisation)],
        "relationships": relationships,
        "deal_roles": deal_roles,
        "timeline": tl,
        "history": history_for(person, limit=50),
        "identity_form": IdentityForm(),
        "relationship_form": RelationshipForm(user=user),
        "log_form": ActivityForm(user=user, initial={"kind": "note"}, hide_targets=True),
    }
    return render(request, "people/person_detail.html", context)


def _person_for_write(request: AuthedRequest, pk: int) -> Person:
    person = person_detail(user=request.user, person_id=pk)
    if not can_edit(request.user, person):
        raise PermissionDenied("You can see this person but not change them.")
    return person


@login_required
def person_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    conflict: list[dict[str, str]] | None = None
    if request.method == "POST":
        form = PersonEditForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                with transaction.atomic():
                    actions.person_update(
                        actor=request.user,
                        person=person,
                        data=form.person_data(),
                        expected_version=form.cleaned_data.get("version"),
                    )
                    actions.tags_set(obj=person, names=split_tags(form.cleaned_data["tags"]))
            except ConflictError:
                current = person_detail(user=request.user, person_id=pk)
                current_initial = PersonForm.initial_for(current)
                conflict = conflict_rows(form, current_initial)
                form = rebound_with_version(PersonEditForm, request, current.version, user=request.user)
                person = current
            except ActionError as exc:
                apply_action_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("person-detail", pk=person.pk)
    else:
        form = PersonEditForm(initial=PersonForm.initial_for(person), user=request.user)
    context = {"nav": "people", "form": form, "person": person, "conflict": conflict}
    status = 409 if conflict is not None else 400 if form.errors else 200
    return render(request, "people/person_form.html", context, status=status)


@login_required
def person_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    if request.method == "POST":
        name = person.full_name
        try:
            actions.person_delete(actor=request.user, person=person)
        except ActionError as exc:
            messages.error(request, exc.message)
            return redirect("person-detail", pk=pk)
        messages.success(request, f"Deleted {name}.")
        return redirect("person-list")
    return render(
        request,
        "people/confirm_delete.html",
        {"nav": "people", "object": person, "cancel_url": f"/people/{person.pk}/", "kind": "person"},
    )


@login_required
@require_POST
def identity_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    form = IdentityForm(request.POST)
    if form.is_valid():
        try:
            actions.identity_add(actor=request.user, person=person, **form.cleaned_data)
            messages.success(request, "Added.")
        except ActionError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def identity_remove_view(request: AuthedRequest, pk: int, identity_id: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    identity = Identity.objects.filter(person=person, pk=identity_id).first()
    if identity is None:
        raise Http404("Not found")
    actions.identity_remove(actor=request.user, identity=identity)
    messages.success(request, "Removed.")
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def relationship_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    form = RelationshipForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            actions.relationship_add(
                actor=request.user,
                from_person=person,
                to_person=form.cleaned_data["other"],
                kind=form.cleaned_data["kind"],
                strength=form.cleaned_data["strength"],
            )
            messages.success(request, "Relationship added.")
        except ActionError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("person-detail", pk=pk)


@login_required
def person_lookup_view(request: AuthedRequest) -> JsonResponse:
    q = request.GET.get("q", "")[:200].strip()
    results = []
    if len(q) >= 2:
        page = person_list(user=request.user, filters=PersonFilters(q=q), limit=10, with_total=False)
        results = [
            {
                "id": p.pk,
                "value": lookup_label(p),
                "label": " · ".join(
                    x
                    for x in [
                        p.full_name,
                        p.organisation.name if p.organisation else "",
                        p.primary_email,
                    ]
                    if x
                ),
            }
            for p in page.items
        ]
    return JsonResponse({"results": results})


# --- organisations ----------------------------------------------------------------------


@login_required
def organisation_list_view(request: AuthedRequest) -> HttpResponse:
    filters = OrgFilters(
        q=request.GET.get("q", "")[:200].strip(),
        industry=request.GET.get("industry", "")[:100].strip(),
        tag=request.GET.get("tag", "")[:60].strip(),
        owner=owner_param(request),
        sort=request.GET.get("sort", "name"),
    )
    error = None
    try:
        page = organisation_list(
            user=request.user, filters=filters, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE
        )
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    context = {
        "nav": "orgs",
        "page": page,
        "filters": filters,
        "error": error,
        "sorts": list(ORG_SORTS),
        "owners": owner_choices(),
        "owner_raw": request.GET.get("owner", ""),
        "export_query": query_without(request, "cursor"),
        "is_first_page": not request.GET.get("cursor"),
    }
    return render(request, "people/organisation_list.html", context, status=400 if error else 200)


def _domains(text: str) -> list[str]:
    return [d.strip().lower().removeprefix("www.") for d in text.split(",") if d.strip()][:50]


@login_required
def organisation_create_view(request: AuthedRequest) -> HttpResponse:
    require_writer(request.user)
    if request.method == "POST":
        form = OrganisationForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                org = actions.organisation_create(
                    actor=request.user,
                    domains=_domains(form.cleaned_data["domains"]),
                    tags=split_tags(form.cleaned_data["tags"]),
                    **form.org_data(),
                )
            except ActionError as exc:
                apply_action_error(form, exc)
            else:
                messages.success(request, f"Added {org.name}.")
                return redirect("organisation-detail", pk=org.pk)
    else:
        form = OrganisationForm(user=request.user)
    return render(
        request,
        "people/organisation_form.html",
        {"nav": "orgs", "form": form},
        status=400 if form.errors else 200,
    )


def _merged_org_redirect(request: AuthedRequest, pk: int) -> HttpResponse | None:
    survivor = (
        visible(Organisation, request.user)
        .filter(pk=pk, merged_into__isnull=False)
        .values_list("merged_into_id", flat=True)
        .first()
    )
    return redirect("organisation-detail", pk=survivor) if survivor else None


@login_required
def organisation_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    user = request.user
    try:
        org = organisation_detail(user=user, org_id=pk)
    except Http404:
        if (response := _merged_org_redirect(request, pk)) is not None:
            return response
        raise
    people = list(
        people_visible(user).filter(organisation=org).select_related("owner").order_by("sort_key", "id")[:51]
    )
    more_people = len(people) > 50
    people = people[:50]
    attach_primary_identities(people)
    deals = list(
        deals_visible(user)
        .filter(organisation=org)
        .select_related("stage", "owner")
        .order_by("-created_at", "-id")[:50]
    )
    tl = timeline_for(user, request.GET.get("tl"), organisation_id=org.pk)
    from rapport.sales.forms import OrderForm

    context = {
        "nav": "orgs",
        "org": org,
        "can_edit": can_edit(user, org),
        "can_write": user.can_write,
        "subsidiaries": list(organisations_visible(user).filter(parent=org).order_by("name_key", "id")[:50]),
        "people": people,
        "more_people": more_people,
        "deals": deals,
        "orders": list(Order.objects.filter(organisation=org).select_related("product", "deal")[:100]),
        "order_form": OrderForm() if Product.objects.filter(active=True).exists() else None,
        "timeline": tl,
        "history": history_for(org, limit=50),
        "log_form": ActivityForm(user=user, initial={"kind": "note"}, hide_targets=True),
    }
    return render(request, "people/organisation_detail.html", context)


def _org_for_write(request: AuthedRequest, pk: int) -> Organisation:
    org = organisation_detail(user=request.user, org_id=pk)
    if not can_edit(request.user, org):
        raise PermissionDenied("You can see this organisation but not change it.")
    return org


@login_required
def organisation_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    org = _org_for_write(request, pk)
    conflict = None
    if request.method == "POST":
        form = OrganisationEditForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                with transaction.atomic():
                    actions.organisation_update(
                        actor=request.user,
                        org=org,
                        data=form.org_data(),
                        expected_version=form.cleaned_data.get("version"),
                    )
                    actions.organisation_domains_set(
                        actor=request.user, org=org, domains=_domains(form.cleaned_data["domains"])
                    )
                    actions.tags_set(obj=org, names=split_tags(form.cleaned_data["tags"]))
            except ConflictError:
                current = organisation_detail(user=request.user, org_id=pk)
                conflict = conflict_rows(form, OrganisationForm.initial_for(current))
                form = rebound_with_version(OrganisationEditForm, request, current.version, user=request.user)
                org = current
            except ActionError as exc:
                apply_action_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("organisation-detail", pk=org.pk)
    else:
        form = OrganisationEditForm(initial=OrganisationForm.initial_for(org), user=request.user)
    status = 409 if conflict is not None else 400 if form.errors else 200
    return render(
        request,
        "people/organisation_form.html",
        {"nav": "orgs", "form": form, "org": org, "conflict": conflict},
        status=status,
    )


@login_required
def organisation_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    org = _org_for_write(request, pk)
    if request.method == "POST":
        name = org.name
        try:
            actions.organisation_delete(actor=request.user, org=org)
        except ActionError as exc:
            messages.error(request, exc.message)
            return redirect("organisation-detail", pk=pk)
        messages.success(request, f"Deleted {name}.")
        return redirect("organisation-list")
    return render(
        request,
        "people/confirm_delete.html",
        {"nav": "orgs", "object": org, "cancel_url": f"/organisations/{org.pk}/", "kind": "organisation"},
    )


@login_required
def organisation_lookup_view(request: AuthedRequest) -> JsonResponse:
    q = request.GET.get("q", "")[:200].strip()
    results = []
    if len(q) >= 2:
        page = organisation_list(user=request.user, filters=OrgFilters(q=q), limit=10, with_total=False)
        results = [
            {"id": o.pk, "value": lookup_label(o), "label": " · ".join(x for x in [o.name, o.industry] if x)}
            for o in page.items
        ]
    return JsonResponse({"results": results})
