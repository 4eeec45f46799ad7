"""Writes on people and organisations. Keyword-only, atomic, audited."""

import datetime as dt
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone

from rapport.accounts.models import Team, User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.actions import (
    check_lengths,
    default_team,
    require_write,
    resolve_access_fields,
    update_with_version,
)
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.people.identities import FREE_MAIL_DOMAINS, IdentityError, email_domain, normalise
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    IdentityKind,
    Organisation,
    OrganisationDomain,
    Person,
    Relationship,
    RelationshipKind,
    Source,
    Tag,
)

PERSON_FIELDS = [
    "first_name",
    "last_name",
    "title",
    "organisation",
    "bio",
    "language",
    "is_vip",
    "custom",
    "owner",
    "team",
    "visibility",
]
ORG_FIELDS = [
    "name",
    "industry",
    "employees",
    "website",
    "phone",
    "description",
    "parent",
    "custom",
    "owner",
    "team",
    "visibility",
]


CUSTOM_MAX_KEYS = 50
CUSTOM_KEY_MAX = 60
CUSTOM_VALUE_MAX = 1000


def clean_custom(value: Any) -> dict[str, Any]:
    """The custom fields (`custom`) a person or organisation may be given by an edit: a flat
    name → scalar mapping. Checked here so the web form and the API share one set of rules;
    every problem is reported at once, under the `custom` field."""
    if not isinstance(value, dict):
        raise ActionError("Custom fields are name → value pairs.", {"custom": ["Not a set of fields."]})
    errors: list[str] = []
    if len(value) > CUSTOM_MAX_KEYS:
        errors.append(f"At most {CUSTOM_MAX_KEYS} custom fields (this has {len(value)}).")
    clean: dict[str, Any] = {}
    for raw_key, item in value.items():
        key = raw_key.strip() if isinstance(raw_key, str) else ""
        shown = key[:40] or "(empty)"
        if not key:
            errors.append("Every custom field needs a name.")
            continue
        if len(key) > CUSTOM_KEY_MAX or "\x00" in key:
            errors.append(f"“{shown}…”: names are at most {CUSTOM_KEY_MAX} characters.")
            continue
        if key in clean:
            errors.append(f"“{shown}” is used twice.")
            continue
        if isinstance(item, str):
            if len(item) > CUSTOM_VALUE_MAX or "\x00" in item:
                errors.append(f"“{shown}”: values are at most {CUSTOM_VALUE_MAX} characters.")
                continue
        elif not (item is None or isinstance(item, bool | int | float)):
            errors.append(f"“{shown}”: a value is text, a number, true/false or empty.")
            continue
        clean[key] = item
    if errors:
        raise ActionError("Some custom fields are not valid.", {"custom": list(dict.fromkeys(errors))})
    return clean


def parse_identities(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Normalise (kind, raw) pairs; collect every error instead of stopping at the first."""
    result, errors = [], []
    for kind, raw in pairs:
        if not raw or not raw.strip():
            continue
        try:
            result.append((kind, normalise(kind, raw)))
        except IdentityError as exc:
            errors.append(str(exc))
    if errors:
        raise ActionError("Some identities are not valid.", {"identities": errors})
    return list(dict.fromkeys(result))


@transaction.atomic
def organisation_create(
    *,
    actor: User,
    name: str,
    domains: list[str] | None = None,
    industry: str = "",
    employees: int | None = None,
    website: str = "",
    phone: str = "",
    description: str = "",
    parent: Organisation | None = None,
    owner: User | None = None,
    team: Team | None = None,
    visibility: str = Visibility.EVERYONE,
    tags: list[str] | None = None,
    custom: dict | None = None,
    source: str = Source.MANUAL,
) -> Organisation:
    require_write(actor)
    name = (name or "").strip()
    if not name:
        raise ActionError("An organisation needs a name.", {"name": ["Required."]})
    check_lengths(
        Organisation,
        {"name": name, "industry": industry, "website": website, "phone": phone, "description": description},
    )
    access = resolve_access_fields(actor=actor, owner=owner or actor, team=team, visibility=visibility)
    access.setdefault("team", default_team(actor))
    org = Organisation.objects.create(
        name=name,
        industry=industry,
        employees=employees,
        website=website,
        phone=phone,
        description=description,
        parent=parent,
        custom=clean_custom(custom) if custom else {},
        source=source,
        **access,
    )
    for domain in domains or []:
        domain = domain.strip().lower().removeprefix("www.")
        if domain:
            OrganisationDomain.objects.get_or_create(organisation=org, domain=domain)
    if tags:
        tags_set(obj=org, names=tags)
    audit_record(
        actor=actor, obj=org, action=AuditEntry.Action.CREATE, summary=f"Created organisation {name}"
    )
    return org


@transaction.atomic
def organisation_update(
    *, actor: User, org: Organisation, data: dict[str, Any], expected_version: int | None = None
) -> Organisation:
    def clean(data: dict[str, Any]) -> None:
        if "name" in data and not (data["name"] or "").strip():
            raise ActionError("An organisation needs a name.", {"name": ["Required."]})
        if data.get("parent") is not None and data["parent"].pk == org.pk:
            raise ActionError(
                "An organisation cannot be its own parent.", {"parent": ["Choose another organisation."]}
            )
        if "custom" in data:
            data["custom"] = clean_custom(data["custom"])
        check_lengths(Organisation, data)

    return update_with_version(
        actor=actor, record=org, data=data, expected_version=expected_version, fields=ORG_FIELDS, clean=clean
    )


@transaction.atomic
def organisation_domains_set(*, actor: User, org: Organisation, domains: list[str]) -> list[str]:
    """Replace an organisation's email/web domains (used to link people by email domain)."""
    require_write(actor)
    clean = []
    for raw in domains:
        domain = (
            raw.strip()
            .lower()
            .removeprefix("http://")
            .removeprefix("https://")
            .removeprefix("www.")
            .split("/")[0]
        )
        if not domain:
            continue
        if len(domain) > 253 or "." not in domain or " " in domain:
            raise ActionError(f"“{raw[:60]}” is not a domain.", {"domains": ["Like acme.com."]})
        clean.append(domain)
    clean = list(dict.fromkeys(clean))
    before = sorted(org.domains.values_list("domain", flat=True))
    if before == sorted(clean):
        return clean
    OrganisationDomain.objects.filter(organisation=org).exclude(domain__in=clean).delete()
    for domain in clean:
        OrganisationDomain.objects.get_or_create(organisation=org, domain=domain)
    audit_record(
        actor=actor,
        obj=org,
        action=AuditEntry.Action.UPDATE,
        changes={"domains": [", ".join(before), ", ".join(sorted(clean))]},
    )
    return clean


def organisation_for_email(email: str) -> Organisation | None:
    domain = email_domain(email)
    if not domain or domain in FREE_MAIL_DOMAINS:
        return None
    row = (
        OrganisationDomain.objects.filter(domain=domain).select_related("organisation").order_by("id").first()
    )
    return row.organisation if row else None


@transaction.atomic
def person_create(
    *,
    actor: User,
    first_name: str = "",
    last_name: str = "",
    title: str = "",
    organisation: Organisation | None = None,
    identities: list[tuple[str, str]] | None = None,
    bio: str = "",
    language: str = "",
    is_vip: bool = False,
    owner: User | None = None,
    team: Team | None = None,
    visibility: str = Visibility.EVERYONE,
    tags: list[str] | None = None,
    custom: dict | None = None,
    source: str = Source.MANUAL,
    needs_review: bool = False,
) -> Person:
    require_write(actor)
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    normalised = parse_identities(identities or [])
    if not (first_name or last_name or normalised):
        raise ActionError(
            "A person needs a name or at least one email, phone or handle.", {"first_name": ["Required."]}
        )
    check_lengths(
        Person,
        {"first_name": first_name, "last_name": last_name, "title": title, "bio": bio, "language": language},
    )
    access = resolve_access_fields(actor=actor, owner=owner or actor, team=team, visibility=visibility)
    access.setdefault("team", default_team(actor))
    if organisation is None:
        for kind, value in normalised:
            if kind == IdentityKind.EMAIL and (organisation := organisation_for_email(value)):
                break
    person = Person.objects.create(
        first_name=first_name,
        last_name=last_name,
        title=title,
        organisation=organisation,
        bio=bio,
        language=language,
        is_vip=is_vip,
        custom=clean_custom(custom) if custom else {},
        source=source,
        needs_review=needs_review,
        **access,
    )
    for i, (kind, value) in enumerate(normalised):
        Identity.objects.create(
            person=person,
            kind=kind,
            value=value,
            is_primary=i == 0 or kind not in [k for k, _ in normalised[:i]],
        )
    if organisation is not None:
        Employment.objects.create(person=person, organisation=organisation, title=title, is_current=True)
    if tags:
        tags_set(obj=person, names=tags)
    audit_record(
        actor=actor, obj=person, action=AuditEntry.Action.CREATE, summary=f"Created {person.full_name}"
    )
    return person


@transaction.atomic
def person_update(
    *, actor: User, person: Person, data: dict[str, Any], expected_version: int | None = None
) -> Person:
    def clean(data: dict[str, Any]) -> None:
        for key in ("first_name", "last_name", "title"):
            if key in data and isinstance(data[key], str):
                data[key] = data[key].strip()
        if "custom" in data:
            data["custom"] = clean_custom(data["custom"])
        check_lengths(Person, data)

    new_org = data.get("organisation")
    org_changed = "organisation" in data and (new_org.pk if new_org else None) != person.organisation_id
    person = update_with_version(
        actor=actor,
        record=person,
        data=data,
        expected_version=expected_version,
        fields=PERSON_FIELDS,
        clean=clean,
    )
    if org_changed:
        Employment.objects.filter(person=person, is_current=True).update(
            is_current=False, ended_on=timezone.localdate()
        )
        if new_org is not None:
            Employment.objects.create(
                person=person,
                organisation=new_org,
                title=person.title,
                is_current=True,
                started_on=timezone.localdate(),
            )
    return person


@transaction.atomic
def identity_add(*, actor: User, person: Person, kind: str, value: str, label: str = "") -> Identity:
    require_write(actor)
    try:
        normalised = normalise(kind, value)
    except IdentityError as exc:
        raise ActionError(str(exc), {"value": [str(exc)]})
    try:
        with transaction.atomic():
            identity, created = Identity.objects.get_or_create(
                person=person,
                kind=kind,
                value=normalised,
                defaults={
                    "label": label[:30],
                    "is_primary": not person.identities.filter(kind=kind).exists(),
                },
            )
    except IntegrityError:
        identity, created = Identity.objects.get(person=person, kind=kind, value=normalised), False
    if created:
        audit_record(
            actor=actor,
            obj=person,
            action=AuditEntry.Action.UPDATE,
            changes={f"identity:{kind}": [None, normalised]},
        )
    return identity


@transaction.atomic
def identity_remove(*, actor: User, identity: Identity) -> None:
    require_write(actor)
    audit_record(
        actor=actor,
        obj=identity.person,
        action=AuditEntry.Action.UPDATE,
        changes={f"identity:{identity.kind}": [identity.value, None]},
    )
    identity.delete()


class Tagged(Protocol):
    """Anything with a `tags` many-to-many to Tag (people, organisations, conversations)."""

    @property
    def tags(self) -> Any: ...


def tags_set(*, obj: Tagged, names: list[str]) -> None:
    clean = [n.strip()[:60] for n in names if n and n.strip()]
    tags = []
    for name in dict.fromkeys(clean):
        tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
        tags.append(tag)
    obj.tags.set(tags)


@transaction.atomic
def relationship_add(
    *,
    actor: User,
    from_person: Person,
    to_person: Person,
    kind: str,
    strength: int = 50,
    source: str = "manual",
) -> Relationship:
    require_write(actor)
    if from_person.pk == to_person.pk:
        raise ActionError(
            "A person cannot have a relationship with themselves.", {"to_person": ["Choose someone else."]}
        )
    if not 0 <= strength <= 100:
        raise ActionError("Strength is between 0 and 100.", {"strength": ["0–100."]})
    rel, created = Relationship.objects.get_or_create(
        from_person=from_person,
        to_person=to_person,
        kind=kind,
        defaults={"strength": strength, "source": source, "created_by": actor},
    )
    if not created and rel.strength != strength:
        rel.strength = strength
        rel.save(update_fields=["strength"])
    audit_record(
        actor=actor,
        obj=from_person,
        action=AuditEntry.Action.UPDATE,
        changes={f"relationship:{kind}": [None, str(to_person)]},
    )
    return rel


@transaction.atomic
def relationship_remove(*, actor: User, relationship: Relationship) -> None:
    """Remove a link between two people. The caller has checked it may change the person the
    link was reached from; the removal shows in both people's history."""
    require_write(actor)
    rel = relationship
    kind = RelationshipKind(rel.kind).label if rel.kind in RelationshipKind.values else rel.kind
    audit_record(
        actor=actor,
        obj=rel.from_person,
        action=AuditEntry.Action.UPDATE,
        changes={f"relationship:{rel.kind}": [str(rel.to_person), None]},
    )
    audit_record(
        actor=actor,
        obj=rel.to_person,
        action=AuditEntry.Action.UPDATE,
        changes={f"relationship:{rel.kind}": [str(rel.from_person), None]},
        summary=f"{rel.from_person} no longer: {kind.lower()} {rel.to_person}",
    )
    rel.delete()


def _check_dates(started_on: dt.date | None, ended_on: dt.date | None) -> None:
    if started_on and ended_on and ended_on < started_on:
        raise ActionError("It ends before it starts.", {"ended_on": ["On or after the start date."]})


def _employment_label(employment: Employment) -> str:
    title = f"{employment.title}, " if employment.title else ""
    return f"{title}{employment.organisation}"


@transaction.atomic
def employment_add(
    *,
    actor: User,
    person: Person,
    organisation: Organisation,
    title: str = "",
    started_on: dt.date | None = None,
    ended_on: dt.date | None = None,
) -> Employment:
    """Record that a person works (or worked, with `ended_on`) at an organisation. The caller
    has checked `can_edit` on the person and that the organisation is visible to the actor."""
    require_write(actor)
    title = (title or "").strip()
    check_lengths(Employment, {"title": title})
    _check_dates(started_on, ended_on)
    employment = Employment.objects.create(
        person=person,
        organisation=organisation,
        title=title,
        started_on=started_on,
        ended_on=ended_on,
        is_current=ended_on is None or ended_on > timezone.localdate(),
    )
    audit_record(
        actor=actor,
        obj=person,
        action=AuditEntry.Action.UPDATE,
        changes={"employment": [None, _employment_label(employment)]},
    )
    return employment


@transaction.atomic
def employment_end(*, actor: User, employment: Employment, ended_on: dt.date | None = None) -> Employment:
    require_write(actor)
    ended_on = ended_on or timezone.localdate()
    _check_dates(employment.started_on, ended_on)
    if not employment.is_current and employment.ended_on == ended_on:
        return employment
    employment.ended_on = ended_on
    employment.is_current = False
    employment.save(update_fields=["ended_on", "is_current"])
    audit_record(
        actor=actor,
        obj=employment.person,
        action=AuditEntry.Action.UPDATE,
        changes={"employment": [_employment_label(employment), f"ended {ended_on.isoformat()}"]},
    )
    return employment


ADDRESS_FIELDS = ["label", "street", "city", "region", "postcode", "country"]


def _address_text(address: Address) -> str:
    return f"{address.label}: {address}" if address.label else str(address)


def _address_data(data: dict[str, Any]) -> dict[str, str]:
    unknown = set(data) - set(ADDRESS_FIELDS)
    if unknown:
        raise ActionError(f"Unknown fields: {', '.join(sorted(unknown))}")
    clean = {}
    for name, value in data.items():
        if not isinstance(value, str):
            raise ActionError("Address parts are text.", {name: ["Text expected."]})
        clean[name] = value.strip()
    check_lengths(Address, clean)
    return clean


@transaction.atomic
def address_add(*, actor: User, person: Person, data: dict[str, Any]) -> Address:
    require_write(actor)
    clean = _address_data(data)
    if not any(clean.get(name) for name in ADDRESS_FIELDS if name != "label"):
        raise ActionError(
            "An address needs at least a street, city, postcode or country.", {"street": ["Required."]}
        )
    address = Address.objects.create(person=person, **clean)
    audit_record(
        actor=actor,
        obj=person,
        action=AuditEntry.Action.UPDATE,
        changes={"address": [None, _address_text(address)]},
    )
    return address


@transaction.atomic
def address_update(*, actor: User, address: Address, data: dict[str, Any]) -> Address:
    require_write(actor)
    clean = _address_data(data)
    before = _address_text(address)
    for name, value in clean.items():
        setattr(address, name, value)
    if not any(getattr(address, name) for name in ADDRESS_FIELDS if name != "label"):
        raise ActionError(
            "An address needs at least a street, city, postcode or country.", {"street": ["Required."]}
        )
    address.save()
    if address.person is not None and before != _address_text(address):
        audit_record(
            actor=actor,
            obj=address.person,
            action=AuditEntry.Action.UPDATE,
            changes={"address": [before, _address_text(address)]},
        )
    return address


@transaction.atomic
def address_remove(*, actor: User, address: Address) -> None:
    require_write(actor)
    if address.person is not None:
        audit_record(
            actor=actor,
            obj=address.person,
            action=AuditEntry.Action.UPDATE,
            changes={"address": [_address_text(address), None]},
        )
    address.delete()


@transaction.atomic
def person_delete(*, actor: User, person: Person) -> None:
    require_write(actor)
    audit_record(
        actor=actor, obj=person, action=AuditEntry.Action.DELETE, summary=f"Deleted {person.full_name}"
    )
    person.delete()


@transaction.atomic
def organisation_delete(*, actor: User, org: Organisation) -> None:
    require_write(actor)
    audit_record(actor=actor, obj=org, action=AuditEntry.Action.DELETE, summary=f"Deleted {org.name}")
    org.delete()
