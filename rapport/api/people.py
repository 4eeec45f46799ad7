"""People, organisations, the caller (`/me`) and global search.

Reads start from the selectors (so access is decided before anything is loaded); writes load
the record with `get_editable` and go through the actions. A record the caller may not see is
a 404, for reads and writes alike."""

from typing import Annotated, Any

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.http import Http404
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from rapport.api.common import delete_record, patch_fields, selector_page
from rapport.api.pagination import PageParams, page_schema
from rapport.api.schemas import (
    AddressIn,
    AddressOut,
    AddressPatch,
    Chars,
    EmploymentEnd,
    EmploymentIn,
    EmploymentOut,
    Id,
    IdentityIn,
    IdentityOut,
    MeOut,
    OrganisationCreate,
    OrganisationOut,
    OrganisationPatch,
    PersonCreate,
    PersonOut,
    PersonPatch,
    RelationshipIn,
    RelationshipOut,
    SearchOut,
    access_kwargs,
    access_out,
    expected_version,
    lookup,
    ref,
    require_writer,
    team_ref,
    user_ref,
    visible_ids,
)
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.access import get_editable, get_visible
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.people import actions
from rapport.people.identities import IdentityError, normalise
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    Organisation,
    OrganisationDomain,
    Person,
    RelationshipKind,
    Source,
)
from rapport.people.selectors import (
    OrgFilters,
    PersonFilters,
    organisation_detail,
    organisation_list,
    organisations_visible,
    people_visible,
    person_detail,
    person_list,
    relationship_of,
    relationships_of,
)
from rapport.web.search import global_search

router = Router()

PersonPage = page_schema("PersonPage", PersonOut)
OrganisationPage = page_schema("OrganisationPage", OrganisationOut)


# ---------------------------------------------------------------- people


def _people_out(user: Any, people: list[Person]) -> list[dict[str, Any]]:
    """Serialise a page with a fixed number of queries, whatever its size."""
    prefetch_related_objects(people, "identities", "tags", "team")
    orgs = visible_ids(user, Organisation, [p.organisation_id for p in people])
    out = []
    for p in people:
        identities = list(p.identities.all())
        first = {
            kind: next((i.value for i in identities if i.kind == kind), "") for kind in ("email", "phone")
        }
        out.append(
            {
                "id": p.pk,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "full_name": p.full_name,
                "title": p.title,
                "organisation": ref(p.organisation, orgs),
                "bio": p.bio,
                "language": p.language,
                "is_vip": p.is_vip,
                "needs_review": p.needs_review,
                "source": p.source,
                "primary_email": first["email"],
                "primary_phone": first["phone"],
                "identities": [_identity_out(i) for i in identities],
                "tags": [t.name for t in p.tags.all()],
                "custom": p.custom or {},
                "last_activity_at": p.last_activity_at,
                **access_out(p),
            }
        )
    return out


def _identity_out(i: Identity) -> dict[str, Any]:
    return {
        "id": i.pk,
        "kind": i.kind,
        "value": i.value,
        "label": i.label,
        "is_primary": i.is_primary,
        "verified": i.verified,
    }


def _person_out(user: Any, person_id: int) -> dict[str, Any]:
    return _people_out(user, [person_detail(user=user, person_id=person_id)])[0]


class PersonQuery(Schema):
    q: Annotated[str, Chars(200)] = Field("", description="Prefix of a name, or of an email/phone/handle.")
    organisation: Id | None = None
    tag: Annotated[str, Chars(60)] = ""
    owner: Id | None = None
    vip: bool | None = None
    needs_review: bool | None = None
    sort: Annotated[str, Chars(20)] = Field("name", description="name, -name, created or -created.")


@router.get("/people", response=PersonPage, tags=["People"])
def list_people(request: ApiRequest, filters: Query[PersonQuery], page: Query[PageParams]) -> dict[str, Any]:
    return selector_page(person_list, request.auth, PersonFilters(**filters.dict()), page, _people_out)


@router.post("/people", response={201: PersonOut}, tags=["People"])
def create_person(request: ApiRequest, payload: PersonCreate) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        person = actions.person_create(
            actor=user,
            first_name=payload.first_name,
            last_name=payload.last_name,
            title=payload.title,
            organisation=lookup(
                organisations_visible(user), payload.organisation, "organisation", "organisation"
            ),
            identities=[(i.kind, i.value) for i in payload.identities],
            bio=payload.bio,
            language=payload.language,
            is_vip=payload.is_vip,
            tags=payload.tags,
            custom=payload.custom,
            source=Source.API,
            **access_kwargs(payload),
        )
        for ident in payload.identities:
            if ident.label:
                # Values were validated by the action above, so normalise cannot fail here.
                value = normalise(ident.kind, ident.value)
                Identity.objects.filter(person=person, kind=ident.kind, value=value).update(label=ident.label)
    return Status(201, _person_out(user, person.pk))


@router.get("/people/{person_id}", response=PersonOut, tags=["People"])
def get_person(request: ApiRequest, person_id: int) -> dict[str, Any]:
    return _person_out(request.auth, person_id)


@router.patch("/people/{person_id}", response=PersonOut, tags=["People"])
def update_person(
    request: ApiRequest, person_id: int, payload: PersonPatch, version: int | None = None
) -> dict[str, Any]:
    """Change some fields. Pass `?version=N` (or `If-Match: "N"`) to refuse the change with a
    409 if someone saved the person since version N."""
    user = require_writer(request)
    data = patch_fields(payload, nullable={"organisation", "owner", "team", "visibility"})
    tags = data.pop("tags", None)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user).select_for_update())
        if "organisation" in data:
            data["organisation"] = lookup(
                organisations_visible(user), data["organisation"], "organisation", "organisation"
            )
        person = actions.person_update(
            actor=user,
            person=person,
            data={**data, **access_kwargs(payload)},
            expected_version=expected_version(request, version),
        )
        if tags is not None:
            actions.tags_set(obj=person, names=tags)
    return _person_out(user, person.pk)


@router.delete("/people/{person_id}", response={204: None}, tags=["People"])
def delete_person(request: ApiRequest, person_id: int) -> Status[None]:
    return delete_record(
        request,
        Person,
        person_id,
        people_visible,
        lambda user, p: actions.person_delete(actor=user, person=p),
    )


@router.post("/people/{person_id}/identities", response={201: IdentityOut}, tags=["People"])
def add_identity(request: ApiRequest, person_id: int, payload: IdentityIn) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        identity = actions.identity_add(
            actor=user, person=person, kind=payload.kind, value=payload.value, label=payload.label
        )
    return Status(201, _identity_out(identity))


@router.delete("/people/{person_id}/identities/{identity_id}", response={204: None}, tags=["People"])
def remove_identity(request: ApiRequest, person_id: int, identity_id: int) -> Status[None]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        identity = get_visible_identity(person, identity_id)
        actions.identity_remove(actor=user, identity=identity)
    return Status(204, None)


def get_visible_identity(person: Person, identity_id: int) -> Identity:
    from django.http import Http404

    identity = Identity.objects.filter(person=person, pk=identity_id).select_related("person").first()
    if identity is None:
        raise Http404("Not found")
    return identity


@router.get("/people/{person_id}/relationships", response=list[RelationshipOut], tags=["People"])
def list_relationships(request: ApiRequest, person_id: int) -> list[dict[str, Any]]:
    """Both directions; links to people the caller may not see are left out."""
    user = request.auth
    person = get_visible(Person, user, person_id, people_visible(user))
    return [
        {
            "id": link.rel.pk,
            "direction": link.direction,
            "kind": link.rel.kind,
            "strength": link.rel.strength,
            "other": {"id": link.other.pk, "name": link.other.full_name},
            "source": link.rel.source,
            "created_at": link.rel.created_at,
        }
        for link in relationships_of(user=user, person=person, limit=500)
    ]


@router.post("/people/{person_id}/relationships", response={201: RelationshipOut}, tags=["People"])
def add_relationship(request: ApiRequest, person_id: int, payload: RelationshipIn) -> Status[dict[str, Any]]:
    user = require_writer(request)
    if payload.kind not in RelationshipKind.values:
        raise ActionError(
            "Unknown relationship kind.", {"kind": [f"Choose one of {', '.join(RelationshipKind.values)}."]}
        )
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        other = lookup(people_visible(user), payload.to_person, "to_person", "person")
        rel = actions.relationship_add(
            actor=user, from_person=person, to_person=other, kind=payload.kind, strength=payload.strength
        )
    return Status(
        201,
        {
            "id": rel.pk,
            "direction": "out",
            "kind": rel.kind,
            "strength": rel.strength,
            "other": {"id": other.pk, "name": other.full_name},
            "source": rel.source,
            "created_at": rel.created_at,
        },
    )


@router.delete("/people/{person_id}/relationships/{rel_id}", response={204: None}, tags=["People"])
def remove_relationship(request: ApiRequest, person_id: int, rel_id: int) -> Status[None]:
    """Either direction, as listed for this person; the other person must be visible."""
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        rel = relationship_of(user=user, person=person, rel_id=rel_id).rel
        actions.relationship_remove(actor=user, relationship=rel)
    return Status(204, None)


def _employment_out(e: Employment) -> dict[str, Any]:
    return {
        "id": e.pk,
        "organisation": {"id": e.organisation_id, "name": e.organisation.name},
        "title": e.title,
        "started_on": e.started_on,
        "ended_on": e.ended_on,
        "is_current": e.is_current,
    }


@router.get("/people/{person_id}/employments", response=list[EmploymentOut], tags=["People"])
def list_employments(request: ApiRequest, person_id: int) -> list[dict[str, Any]]:
    """Jobs at organisations the caller may see; current ones first."""
    user = request.auth
    person = get_visible(Person, user, person_id, people_visible(user))
    jobs = list(
        Employment.objects.filter(person=person, organisation__in=organisations_visible(user)).select_related(
            "organisation"
        )[:200]
    )
    return [_employment_out(e) for e in jobs]


@router.post("/people/{person_id}/employments", response={201: EmploymentOut}, tags=["People"])
def add_employment(request: ApiRequest, person_id: int, payload: EmploymentIn) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        org = lookup(organisations_visible(user), payload.organisation, "organisation", "organisation")
        employment = actions.employment_add(
            actor=user,
            person=person,
            organisation=org,
            title=payload.title,
            started_on=payload.started_on,
            ended_on=payload.ended_on,
        )
    return Status(201, _employment_out(employment))


def _employment_for_write(user: Any, person: Person, employment_id: int) -> Employment:
    employment = (
        Employment.objects.filter(
            person=person, pk=employment_id, organisation__in=organisations_visible(user)
        )
        .select_related("organisation")
        .first()
    )
    if employment is None:
        raise Http404("Not found")
    employment.person = person
    return employment


@router.post("/people/{person_id}/employments/{employment_id}/end", response=EmploymentOut, tags=["People"])
def end_employment(
    request: ApiRequest, person_id: int, employment_id: int, payload: EmploymentEnd
) -> dict[str, Any]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        employment = _employment_for_write(user, person, employment_id)
        employment = actions.employment_end(actor=user, employment=employment, ended_on=payload.ended_on)
    return _employment_out(employment)


def _address_out(a: Address) -> dict[str, Any]:
    return {name: getattr(a, name) for name in ["id", *actions.ADDRESS_FIELDS]}


@router.get("/people/{person_id}/addresses", response=list[AddressOut], tags=["People"])
def list_addresses(request: ApiRequest, person_id: int) -> list[dict[str, Any]]:
    user = request.auth
    person = get_visible(Person, user, person_id, people_visible(user))
    return [_address_out(a) for a in Address.objects.filter(person=person).order_by("id")[:200]]


@router.post("/people/{person_id}/addresses", response={201: AddressOut}, tags=["People"])
def add_address(request: ApiRequest, person_id: int, payload: AddressIn) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        address = actions.address_add(actor=user, person=person, data=payload.model_dump())
    return Status(201, _address_out(address))


def _address_for_write(person: Person, address_id: int) -> Address:
    address = Address.objects.filter(person=person, pk=address_id).first()
    if address is None:
        raise Http404("Not found")
    address.person = person
    return address


@router.patch("/people/{person_id}/addresses/{address_id}", response=AddressOut, tags=["People"])
def update_address(
    request: ApiRequest, person_id: int, address_id: int, payload: AddressPatch
) -> dict[str, Any]:
    user = require_writer(request)
    data = patch_fields(payload, nullable=set(), access=())
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        address = actions.address_update(
            actor=user, address=_address_for_write(person, address_id), data=data
        )
    return _address_out(address)


@router.delete("/people/{person_id}/addresses/{address_id}", response={204: None}, tags=["People"])
def remove_address(request: ApiRequest, person_id: int, address_id: int) -> Status[None]:
    user = require_writer(request)
    with transaction.atomic():
        person = get_editable(Person, user, person_id, people_visible(user))
        actions.address_remove(actor=user, address=_address_for_write(person, address_id))
    return Status(204, None)


# ---------------------------------------------------------------- organisations


def _orgs_out(user: Any, orgs: list[Organisation]) -> list[dict[str, Any]]:
    prefetch_related_objects(orgs, "domains", "tags", "team")
    parents = visible_ids(user, Organisation, [o.parent_id for o in orgs])
    return [
        {
            "id": o.pk,
            "name": o.name,
            "industry": o.industry,
            "employees": o.employees,
            "website": o.website,
            "phone": o.phone,
            "description": o.description,
            "parent": ref(o.parent, parents),
            "domains": sorted(d.domain for d in o.domains.all()),
            "tags": [t.name for t in o.tags.all()],
            "custom": o.custom or {},
            "source": o.source,
            **access_out(o),
        }
        for o in orgs
    ]


def _org_out(user: Any, org_id: int) -> dict[str, Any]:
    return _orgs_out(user, [organisation_detail(user=user, org_id=org_id)])[0]


def _clean_domains(domains: list[str]) -> list[str]:
    clean, errors = [], []
    for raw in domains:
        domain = raw.strip().lower().removeprefix("www.")
        if not domain:
            continue
        try:
            normalise("website", domain)
        except IdentityError:
            errors.append(f"“{raw[:80]}” is not a domain name.")
            continue
        if "/" in domain or ":" in domain:
            errors.append(f"“{raw[:80]}” is not a domain name (no scheme or path).")
            continue
        clean.append(domain)
    if errors:
        raise ActionError("Some domains are not valid.", {"domains": errors})
    return list(dict.fromkeys(clean))


def _check_parent(org: Organisation | None, parent: Organisation | None) -> None:
    """An organisation may not end up above itself: walk up from the new parent."""
    if org is None or parent is None:
        return
    seen: set[int] = set()
    current: Organisation | None = parent
    while current is not None and current.pk not in seen:
        if current.pk == org.pk:
            raise ActionError(
                "That parent would make a loop of organisations.",
                {"parent": ["Choose another organisation."]},
            )
        seen.add(current.pk)
        if len(seen) > 100:
            break
        current = current.parent


class OrgQuery(Schema):
    q: Annotated[str, Chars(200)] = Field(
        "", description="Prefix of the name, or of a domain like example.com."
    )
    industry: Annotated[str, Chars(100)] = ""
    tag: Annotated[str, Chars(60)] = ""
    owner: Id | None = None
    sort: Annotated[str, Chars(20)] = Field("name", description="name, -name, created or -created.")


@router.get("/organisations", response=OrganisationPage, tags=["Organisations"])
def list_organisations(
    request: ApiRequest, filters: Query[OrgQuery], page: Query[PageParams]
) -> dict[str, Any]:
    return selector_page(organisation_list, request.auth, OrgFilters(**filters.dict()), page, _orgs_out)


@router.post("/organisations", response={201: OrganisationOut}, tags=["Organisations"])
def create_organisation(request: ApiRequest, payload: OrganisationCreate) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        org = actions.organisation_create(
            actor=user,
            name=payload.name,
            domains=_clean_domains(payload.domains),
            industry=payload.industry,
            employees=payload.employees,
            website=payload.website,
            phone=payload.phone,
            description=payload.description,
            parent=lookup(organisations_visible(user), payload.parent, "parent", "organisation"),
            tags=payload.tags,
            custom=payload.custom,
            source=Source.API,
            **access_kwargs(payload),
        )
    return Status(201, _org_out(user, org.pk))


@router.get("/organisations/{org_id}", response=OrganisationOut, tags=["Organisations"])
def get_organisation(request: ApiRequest, org_id: int) -> dict[str, Any]:
    return _org_out(request.auth, org_id)


@router.patch("/organisations/{org_id}", response=OrganisationOut, tags=["Organisations"])
def update_organisation(
    request: ApiRequest, org_id: int, payload: OrganisationPatch, version: int | None = None
) -> dict[str, Any]:
    """Change some fields; `domains`, `tags` and `custom` replace the whole list/dict. Pass
    `?version=N` (or `If-Match: "N"`) for a 409 instead of overwriting a newer save."""
    user = require_writer(request)
    data = patch_fields(payload, nullable={"employees", "parent", "owner", "team", "visibility"})
    tags = data.pop("tags", None)
    domains = data.pop("domains", None)
    with transaction.atomic():
        org = get_editable(Organisation, user, org_id, organisations_visible(user).select_for_update())
        if "parent" in data:
            data["parent"] = lookup(organisations_visible(user), data["parent"], "parent", "organisation")
            _check_parent(org, data["parent"])
        org = actions.organisation_update(
            actor=user,
            org=org,
            data={**data, **access_kwargs(payload)},
            expected_version=expected_version(request, version),
        )
        if domains is not None:
            _domains_set(actor=user, org=org, domains=_clean_domains(domains))
        if tags is not None:
            actions.tags_set(obj=org, names=tags)
    return _org_out(user, org.pk)


def _domains_set(*, actor: Any, org: Organisation, domains: list[str]) -> None:
    before = sorted(org.domains.values_list("domain", flat=True))
    if before == sorted(domains):
        return
    org.domains.exclude(domain__in=domains).delete()
    for domain in domains:
        OrganisationDomain.objects.get_or_create(organisation=org, domain=domain)
    audit_record(
        actor=actor, obj=org, action=AuditEntry.Action.UPDATE, changes={"domains": [before, sorted(domains)]}
    )


@router.delete("/organisations/{org_id}", response={204: None}, tags=["Organisations"])
def delete_organisation(request: ApiRequest, org_id: int) -> Status[None]:
    return delete_record(
        request,
        Organisation,
        org_id,
        organisations_visible,
        lambda user, org: actions.organisation_delete(actor=user, org=org),
    )


# ---------------------------------------------------------------- me and search


@router.get("/me", response=MeOut, tags=["Me"])
def me(request: ApiRequest) -> dict[str, Any]:
    user = request.auth
    return {
        "user": user_ref(user),
        "email": user.email,
        "role": user.role,
        "is_admin": user.is_admin,
        "can_write": user.can_write,
        "teams": [team_ref(t) for t in user.teams.order_by("name")],
    }


@router.get("/search", response=SearchOut, tags=["Search"])
def search(
    request: ApiRequest,
    q: Annotated[str, Chars(200)] = "",
    limit: int = Query(8, ge=1, le=50),
) -> dict[str, Any]:
    """People, organisations, deals and activities the caller may see, by prefix."""
    groups = global_search(request.auth, q, limit=limit)
    return {"q": q, "groups": [g.as_json() for g in groups]}
