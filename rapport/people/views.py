"""Web screens for people and organisations: parse → authorise (selectors) → act → render.

A record the user cannot see is a 404 everywhere; one they can see but not change shows no
edit controls, and a write to it answers 403 without touching anything."""

from html import escape as _e
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from rapport.accounts.models import User
from rapport.core.access import can_edit, can_see, visible
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest, concrete_user, int_param
from rapport.people import actions
from rapport.people.forms import (
    AddressForm,
    EmploymentEndForm,
    EmploymentForm,
    IdentityForm,
    OrganisationEditForm,
    OrganisationForm,
    PersonEditForm,
    PersonForm,
    RelationshipForm,
    custom_text,
    identity_pairs,
    split_tags,
)
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    IdentityKind,
    Organisation,
    Person,
)
from rapport.people.selectors import (
    ORG_SORTS,
    PERSON_SORTS,
    OrgFilters,
    PersonFilters,
    PersonRow,
    organisation_detail,
    organisation_list,
    organisations_visible,
    person_detail,
    person_page,
    person_rows,
    relationship_of,
)
from rapport.sales.models import Order, Product
from rapport.sales.selectors import DealFilters, DealRow, deal_rows
from rapport.web.editing import (
    RecordPages,
    act_on_post,
    delete_page,
    edit_page,
    record_page_context,
    require_editable,
    require_writer,
)
from rapport.web.forms import act_on_form, apply_action_error, lookup_label
from rapport.web.listing import bool_param, list_page, owner_param

PAGE_SIZE = 50

PERSON_PAGES = RecordPages(
    kind="person",
    nav="people",
    name="person",
    form_template="people/person_form.html",
    detail_url="person-detail",
    list_url="person-list",
)

ORG_PAGES = RecordPages(
    kind="organisation",
    nav="orgs",
    name="org",
    form_template="people/organisation_form.html",
    detail_url="organisation-detail",
    list_url="organisation-list",
)


# --- people -----------------------------------------------------------------------------


def _reach_cells(p: PersonRow) -> tuple[str, str]:
    """A row's email and phone as mailto:/tel: links, escaped."""
    email, phone = p.primary_email, p.primary_phone
    email_cell = f'<a href="mailto:{_e(quote(email, safe="@"))}">{_e(email)}</a>' if email else ""
    phone_cell = f'<a href="tel:{_e(quote(phone, safe="+"))}">{_e(phone)}</a>' if phone else ""
    return email_cell, phone_cell


def _person_row(user: User, p: PersonRow) -> str:
    """One row of the people list. Built in Python with every value escaped (html.escape), like the board's
    cards: the list is the screen people open most, and 50 rows through Django's template
    engine cost as much as the queries behind them."""
    badges = (' <span class="badge badge-vip">VIP</span>' if p.is_vip else "") + (
        ' <span class="badge badge-review">review</span>' if p.needs_review else ""
    )
    # A visible person may work at a private organisation: its name is not shown then.
    org = p.organisation
    org_cell = (
        f'<a href="/organisations/{p.organisation_id}/">{_e(org.name)}</a>'
        if org is not None and can_see(user, org)
        else ""
    )
    email_cell, phone_cell = _reach_cells(p)
    return (
        f'<tr><td><a href="/people/{p.pk}/">{_e(p.full_name)}</a>{badges}</td>'
        f"<td>{_e(p.title)}</td><td>{org_cell}</td><td>{email_cell}</td>"
        f'<td class="nowrap">{phone_cell}</td><td>{_e(str(p.owner))}</td></tr>'
    )


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
    page, context, status = list_page(
        request,
        lambda cursor: person_rows(user=request.user, filters=filters, cursor=cursor, limit=PAGE_SIZE),
        nav="people",
        filters=filters,
        sorts=PERSON_SORTS,
    )
    user = concrete_user(request)
    context["rows_html"] = mark_safe(  # noqa: S308 — every value is escaped in _person_row
        "".join(_person_row(user, p) for p in page.items)
    )
    if filters.organisation:
        context["filter_org"] = (
            organisations_visible(request.user).filter(pk=filters.organisation).only("id", "name").first()
        )
    return render(request, "people/person_list.html", context, status=status)


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


def _merged_redirect(
    request: AuthedRequest, model: type[Person] | type[Organisation], pk: int, url_name: str
) -> HttpResponse | None:
    """A record merged into another is not found; its old address leads to the survivor."""
    survivor = (
        visible(model, request.user)
        .filter(pk=pk, merged_into__isnull=False)
        .values_list("merged_into_id", flat=True)
        .first()
    )
    return redirect(url_name, pk=survivor) if survivor else None


@login_required
def person_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    user = request.user
    try:
        page = person_page(user=user, person_id=pk)
    except Http404:
        if (response := _merged_redirect(request, Person, pk, "person-detail")) is not None:
            return response
        raise
    person = page.person
    context = {
        "nav": "people",
        "person": person,
        **record_page_context(request, person, person_id=person.pk),
        "org_visible": person.organisation is not None and can_see(user, person.organisation),
        "tags": page.tags,
        "identities": page.identities,
        "employments": page.employments,
        "relationships": page.relationships,
        "deal_roles": page.deal_roles,
        # The blank add-forms are only read inside cached template fragments: built lazily,
        # they cost nothing while the fragments are cached.
        "identity_form": SimpleLazyObject(IdentityForm),
        "relationship_form": SimpleLazyObject(lambda: RelationshipForm(user=user)),
        "employment_form": SimpleLazyObject(lambda: EmploymentForm(user=user, auto_id="emp_%s")),
        "address_form": SimpleLazyObject(lambda: AddressForm(auto_id="addr_new_%s")),
        "addresses": [
            {"address": a, "form": AddressForm(initial=_address_initial(a), auto_id=f"addr{a.pk}_%s")}
            for a in page.addresses
        ],
        "custom_fields": custom_items(person.custom),
    }
    return render(request, "people/person_detail.html", context)


def custom_items(custom: object) -> list[tuple[str, str]]:
    """A record's custom fields for display, sorted by name. Passed as a list because a
    template looking up `custom.items` would find a custom field called "items" first."""
    if not isinstance(custom, dict):
        return []
    return sorted((str(k), custom_text(v)) for k, v in custom.items())


def _address_initial(address: Address) -> dict[str, str]:
    return {name: getattr(address, name) for name in actions.ADDRESS_FIELDS}


def _person_for_write(request: AuthedRequest, pk: int) -> Person:
    person = person_detail(user=request.user, person_id=pk)
    return require_editable(request.user, person, "You can see this person but not change them.")


@login_required
def person_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    def save(form: PersonEditForm, person: Person, version: int | None) -> None:
        with transaction.atomic():
            actions.person_update(
                actor=request.user,
                person=person,
                data={**form.person_data(), **form.custom_data()},
                expected_version=version,
            )
            actions.tags_set(obj=person, names=split_tags(form.cleaned_data["tags"]))

    return edit_page(
        request,
        _person_for_write(request, pk),
        PERSON_PAGES,
        form_class=PersonEditForm,
        form_kwargs=lambda p: {"user": request.user, "custom_initial": p.custom},
        initial_for=PersonForm.initial_for,
        save=save,
        reload=lambda: person_detail(user=request.user, person_id=pk),
    )


@login_required
def person_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    return delete_page(
        request,
        person,
        PERSON_PAGES,
        delete=lambda: actions.person_delete(actor=request.user, person=person),
        done=f"Deleted {person.full_name}.",
    )


@login_required
@require_POST
def identity_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    act_on_post(
        request,
        IdentityForm(request.POST),
        lambda data: actions.identity_add(actor=request.user, person=person, **data),
        "Added.",
    )
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
    act_on_post(
        request,
        RelationshipForm(request.POST, user=request.user),
        lambda data: actions.relationship_add(
            actor=request.user,
            from_person=person,
            to_person=data["other"],
            kind=data["kind"],
            strength=data["strength"],
        ),
        "Relationship added.",
    )
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def relationship_remove_view(request: AuthedRequest, pk: int, rel_id: int) -> HttpResponse:
    """Either direction may be removed from a person one may change, as long as the person at
    the other end is visible (the page only lists those)."""
    person = _person_for_write(request, pk)
    rel = relationship_of(user=request.user, person=person, rel_id=rel_id).rel
    actions.relationship_remove(actor=request.user, relationship=rel)
    messages.success(request, "Relationship removed.")
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def employment_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    act_on_post(
        request,
        EmploymentForm(request.POST, user=request.user),
        lambda data: actions.employment_add(actor=request.user, person=person, **data),
        "Employment added.",
        detailed=True,
    )
    return redirect("person-detail", pk=pk)


def _employment_for_write(request: AuthedRequest, person: Person, employment_id: int) -> Employment:
    employment = (
        Employment.objects.filter(person=person, pk=employment_id).select_related("organisation").first()
    )
    # The page leaves out jobs at organisations the user cannot see; so does every write.
    if employment is None or not can_see(request.user, employment.organisation):
        raise Http404("Not found")
    employment.person = person
    return employment


@login_required
@require_POST
def employment_end_view(request: AuthedRequest, pk: int, employment_id: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    employment = _employment_for_write(request, person, employment_id)
    act_on_post(
        request,
        EmploymentEndForm(request.POST),
        lambda data: actions.employment_end(
            actor=request.user, employment=employment, ended_on=data["ended_on"]
        ),
        "Employment ended.",
        detailed=True,
    )
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def address_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    act_on_post(
        request,
        AddressForm(request.POST),
        lambda data: actions.address_add(actor=request.user, person=person, data=data),
        "Address added.",
        detailed=True,
    )
    return redirect("person-detail", pk=pk)


def _address_for_write(person: Person, address_id: int) -> Address:
    address = Address.objects.filter(person=person, pk=address_id).first()
    if address is None:
        raise Http404("Not found")
    address.person = person
    return address


@login_required
@require_POST
def address_edit_view(request: AuthedRequest, pk: int, address_id: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    address = _address_for_write(person, address_id)
    act_on_post(
        request,
        AddressForm(request.POST),
        lambda data: actions.address_update(actor=request.user, address=address, data=data),
        "Address saved.",
        detailed=True,
    )
    return redirect("person-detail", pk=pk)


@login_required
@require_POST
def address_remove_view(request: AuthedRequest, pk: int, address_id: int) -> HttpResponse:
    person = _person_for_write(request, pk)
    address = _address_for_write(person, address_id)
    actions.address_remove(actor=request.user, address=address)
    messages.success(request, "Address removed.")
    return redirect("person-detail", pk=pk)


@login_required
def person_lookup_view(request: AuthedRequest) -> JsonResponse:
    q = request.GET.get("q", "")[:200].strip()
    results = []
    if len(q) >= 2:
        page = person_rows(user=request.user, filters=PersonFilters(q=q), limit=10, with_total=False)
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
    _, context, status = list_page(
        request,
        lambda cursor: organisation_list(user=request.user, filters=filters, cursor=cursor, limit=PAGE_SIZE),
        nav="orgs",
        filters=filters,
        sorts=ORG_SORTS,
    )
    return render(request, "people/organisation_list.html", context, status=status)


def _domains(text: str) -> list[str]:
    return [d.strip().lower().removeprefix("www.") for d in text.split(",") if d.strip()][:50]


@login_required
def organisation_create_view(request: AuthedRequest) -> HttpResponse:
    require_writer(request.user)
    if request.method == "POST":
        form = OrganisationForm(request.POST, user=request.user)
        org = act_on_form(
            form,
            lambda: actions.organisation_create(
                actor=request.user,
                domains=_domains(form.cleaned_data["domains"]),
                tags=split_tags(form.cleaned_data["tags"]),
                **form.org_data(),
            ),
        )
        if org is not None:
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


@login_required
def organisation_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    user = request.user
    try:
        org = organisation_detail(user=user, org_id=pk)
    except Http404:
        if (response := _merged_redirect(request, Organisation, pk, "organisation-detail")) is not None:
            return response
        raise
    # The same plain-SQL rows as the people and deals lists (see person_rows, deal_rows).
    people_page = person_rows(
        user=user, filters=PersonFilters(organisation=org.pk), limit=50, with_total=False
    )
    deals = deal_rows(
        user=user, filters=DealFilters(organisation=org.pk, sort="-created"), limit=50, with_total=False
    ).items
    from rapport.sales.forms import OrderForm

    context = {
        "nav": "orgs",
        "org": org,
        **record_page_context(request, org, organisation_id=org.pk),
        "subsidiaries": list(organisations_visible(user).filter(parent=org).order_by("name_key", "id")[:50]),
        "people": people_page.items,
        "people_html": mark_safe("".join(_org_person_row(p) for p in people_page.items)),  # noqa: S308
        "deals_html": mark_safe("".join(_org_deal_row(d) for d in deals)),  # noqa: S308
        "more_people": people_page.next_cursor is not None,
        "deals": deals,
        "orders": list(Order.objects.filter(organisation=org).select_related("product", "deal")[:100]),
        "order_form": (
            OrderForm() if can_edit(user, org) and Product.objects.filter(active=True).exists() else None
        ),
        "custom_fields": custom_items(org.custom),
    }
    return render(request, "people/organisation_detail.html", context)


def _org_person_row(p: PersonRow) -> str:
    """A row of an organisation's people, built like the people list's (every value escaped)."""
    email_cell, phone_cell = _reach_cells(p)
    return (
        f'<tr><td><a href="/people/{p.pk}/" dir="auto">{_e(p.full_name)}</a></td><td>{_e(p.title)}</td>'
        f'<td>{email_cell}</td><td class="nowrap">{phone_cell}</td></tr>'
    )


def _org_deal_row(d: DealRow) -> str:
    return (
        f'<tr><td><a href="/deals/{d.pk}/">{_e(d.name)}</a></td><td>{_e(d.stage_name)}</td>'
        f'<td class="right nowrap">{d.amount:,.2f} {_e(d.currency)}</td><td>{_e(d.owner)}</td></tr>'
    )


def _org_for_write(request: AuthedRequest, pk: int) -> Organisation:
    org = organisation_detail(user=request.user, org_id=pk)
    return require_editable(request.user, org, "You can see this organisation but not change it.")


@login_required
def organisation_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    def save(form: OrganisationEditForm, org: Organisation, version: int | None) -> None:
        with transaction.atomic():
            actions.organisation_update(
                actor=request.user,
                org=org,
                data={**form.org_data(), **form.custom_data()},
                expected_version=version,
            )
            actions.organisation_domains_set(
                actor=request.user, org=org, domains=_domains(form.cleaned_data["domains"])
            )
            actions.tags_set(obj=org, names=split_tags(form.cleaned_data["tags"]))

    return edit_page(
        request,
        _org_for_write(request, pk),
        ORG_PAGES,
        form_class=OrganisationEditForm,
        form_kwargs=lambda o: {"user": request.user, "custom_initial": o.custom},
        initial_for=OrganisationForm.initial_for,
        save=save,
        reload=lambda: organisation_detail(user=request.user, org_id=pk),
    )


@login_required
def organisation_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    org = _org_for_write(request, pk)
    return delete_page(
        request,
        org,
        ORG_PAGES,
        delete=lambda: actions.organisation_delete(actor=request.user, org=org),
        done=f"Deleted {org.name}.",
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
