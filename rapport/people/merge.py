"""Merging two people (or two organisations) into one, without losing anything.

The survivor keeps its id; the other record becomes a tombstone (`merged_into=survivor`)
that selectors hide and old links redirect from. Everything attached to the other record is
moved: identities (deduplicated), activities, deal participations, employments, addresses,
relationships (self-links and duplicates dropped), tags, custom fields, and rows of any other
app that point at it. For each field the caller chooses whose value wins; an empty survivor
field is filled from the other record unless the caller chose "survivor" for it.

An AuditEntry with action `merge` on the survivor records which values and rows came from
where, so the merge can be understood (and undone by hand) later.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from rapport.accounts.models import User
from rapport.activities.models import Activity
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.access import can_edit, can_see
from rapport.core.errors import ActionError
from rapport.people import actions
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    Organisation,
    OrganisationDomain,
    Person,
    Relationship,
)
from rapport.sales.models import DealParticipant

PERSON_MERGE_FIELDS = ["first_name", "last_name", "title", "organisation", "bio", "language", "is_vip"]
ORG_MERGE_FIELDS = ["name", "industry", "employees", "website", "phone", "description", "parent"]
CHOICES = ("survivor", "other")


def _blank(value: Any) -> bool:
    return value is None or value == "" or value is False


def _display(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _validate_choices(
    fields: list[str], choices: dict[str, str], survivor_custom: dict, other_custom: dict
) -> None:
    errors: dict[str, list[str]] = {}
    for key, choice in choices.items():
        if choice not in CHOICES:
            errors[key] = ["Choose “survivor” or “other”."]
        elif key.startswith("custom:"):
            if key[7:] not in survivor_custom and key[7:] not in other_custom:
                errors[key] = ["Neither record has this custom field."]
        elif key not in fields:
            errors[key] = [f"Not a field that can be chosen; use one of {', '.join(fields)} or custom:<key>."]
    if errors:
        raise ActionError("Some field choices are not valid.", errors)


def _choose_fields(
    survivor: models.Model, other: models.Model, fields: list[str], choices: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The field changes to apply to the survivor, and a readable record of where each came from."""
    changes: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    for name in fields:
        mine, theirs = getattr(survivor, name), getattr(other, name)
        choice = choices.get(name)
        take_other = choice == "other" or (choice is None and _blank(mine) and not _blank(theirs))
        if take_other and mine != theirs:
            changes[name] = theirs
            provenance[name] = {
                "from": "other",
                "value": _display(theirs),
                "replaced": _display(mine),
                "chosen": choice == "other",
            }
    return changes, provenance


def _merge_custom(
    survivor_custom: dict, other_custom: dict, choices: dict[str, str]
) -> tuple[dict, list[str]]:
    merged = dict(other_custom or {})
    merged.update(survivor_custom or {})  # survivor wins on a clash…
    taken = []
    for key, choice in choices.items():  # …unless the other value was chosen
        if key.startswith("custom:") and choice == "other" and key[7:] in (other_custom or {}):
            merged[key[7:]] = other_custom[key[7:]]
            taken.append(key[7:])
    taken += [k for k in (other_custom or {}) if k not in (survivor_custom or {}) and k not in taken]
    return merged, taken


def _repoint_generic(
    model: type[models.Model], survivor: models.Model, other: models.Model, handled: set[str]
) -> dict[str, Any]:
    """Move rows of every other model that point at `other` (apps added later included).

    Rows that cannot move because the survivor already has an equivalent row (a unique
    constraint) stay on the tombstone, so nothing is deleted; they are reported."""
    report: dict[str, Any] = {}
    for rel in model._meta.get_fields(include_hidden=True):
        if not rel.auto_created or rel.concrete:
            continue
        related = rel.related_model
        field = getattr(rel, "field", None)
        if related is None or field is None or (related is model and field.name == "merged_into"):
            continue
        accessor = f"{related._meta.label_lower}.{field.name}"
        if accessor in handled:
            continue
        if rel.many_to_many:
            through = field.remote_field.through
            src, dst = field.m2m_reverse_field_name(), field.m2m_field_name()
            owners = list(through.objects.filter(**{src: other.pk}).values_list(dst, flat=True))
            already = set(through.objects.filter(**{src: survivor.pk}).values_list(dst, flat=True))
            through.objects.bulk_create(
                [through(**{f"{src}_id": survivor.pk, f"{dst}_id": o}) for o in owners if o not in already]
            )
            through.objects.filter(**{src: other.pk}).delete()
            if owners:
                report[accessor] = len(owners)
            continue
        if not (rel.one_to_many or rel.one_to_one):
            continue
        qs = related._base_manager.filter(**{field.name: other.pk})
        extra = (
            {"version": F("version") + 1} if any(f.name == "version" for f in related._meta.fields) else {}
        )
        try:
            with transaction.atomic():
                moved = qs.update(**{field.name: survivor.pk}, **extra)
            if moved:
                report[accessor] = moved
        except IntegrityError:
            moved, stuck = 0, []
            for pk in qs.values_list("pk", flat=True):
                try:
                    with transaction.atomic():
                        related._base_manager.filter(pk=pk).update(**{field.name: survivor.pk}, **extra)
                    moved += 1
                except IntegrityError:
                    stuck.append(pk)
            report[accessor] = {"moved": moved, "left_on_tombstone": stuck}
    return report


# The two mergeable kinds; both carry `merged_into`.
Mergeable = TypeVar("Mergeable", Person, Organisation)


def _lock_pair(
    model: type[Mergeable], actor: User, survivor_id: Any, other_id: Any
) -> tuple[Mergeable, Mergeable]:
    try:
        ids = [int(survivor_id), int(other_id)]
    except (TypeError, ValueError):
        raise Http404("Not found")
    if ids[0] == ids[1]:
        raise ActionError("Choose two different records to merge.")
    rows = {r.pk: r for r in model._default_manager.select_for_update().filter(pk__in=ids).order_by("pk")}
    if len(rows) != 2:
        raise Http404("Not found")
    survivor, other = rows[ids[0]], rows[ids[1]]
    for record in (survivor, other):
        if not (can_see(actor, record) and can_edit(actor, record)):
            raise Http404("Not found")
    for record in (survivor, other):
        if record.merged_into_id:
            raise ActionError(f"“{record}” was already merged into another record.")
    return survivor, other


# --- people ----------------------------------------------------------------------------------


_PERSON_HANDLED = {
    "people.identity.person",
    "activities.activity.person",
    "sales.dealparticipant.person",
    "people.employment.person",
    "people.address.person",
    "people.relationship.from_person",
    "people.relationship.to_person",
}


@transaction.atomic
def person_merge(
    *, actor: User, survivor: Person, other: Person, field_choices: dict[str, str] | None = None
) -> Person:
    """Merge `other` into `survivor`. Both must be editable by `actor`, else Http404 and
    nothing changes. `field_choices` maps a field (or `custom:<key>`) to "survivor"/"other"."""
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    choices = dict(field_choices or {})
    survivor, other = _lock_pair(Person, actor, survivor.pk, other.pk)
    _validate_choices(PERSON_MERGE_FIELDS, choices, survivor.custom or {}, other.custom or {})
    changes, provenance = _choose_fields(survivor, other, PERSON_MERGE_FIELDS, choices)
    report: dict[str, Any] = {}

    # Identities: keep every one; the survivor keeps its primaries.
    have = set(survivor.identities.values_list("kind", "value"))
    primary_kinds = set(survivor.identities.filter(is_primary=True).values_list("kind", flat=True))
    moved_ids, duplicate_ids = [], []
    for ident in Identity.objects.filter(person=other).order_by("-is_primary", "id"):
        if (ident.kind, ident.value) in have:
            duplicate_ids.append(f"{ident.kind}:{ident.value}")
            ident.delete()
            continue
        ident.person = survivor
        ident.is_primary = ident.is_primary and ident.kind not in primary_kinds
        ident.save(update_fields=["person", "is_primary"])
        have.add((ident.kind, ident.value))
        if ident.is_primary:
            primary_kinds.add(ident.kind)
        moved_ids.append(f"{ident.kind}:{ident.value}")
    report["identities_moved"] = moved_ids
    report["identities_already_present"] = duplicate_ids

    report["activities_moved"] = Activity.objects.filter(person=other).update(
        person=survivor, version=F("version") + 1
    )

    survivor_deals = dict(DealParticipant.objects.filter(person=survivor).values_list("deal_id", "role"))
    deals_moved, deals_joined = [], []
    for part in DealParticipant.objects.filter(person=other):
        if part.deal_id in survivor_deals:
            if part.role and not survivor_deals[part.deal_id]:
                DealParticipant.objects.filter(person=survivor, deal_id=part.deal_id).update(role=part.role)
            part.delete()
            deals_joined.append(part.deal_id)
        else:
            part.person = survivor
            part.save(update_fields=["person"])
            deals_moved.append(part.deal_id)
    report["deals_moved"] = deals_moved
    report["deals_already_shared"] = deals_joined

    # Field values (and the employment change an organisation change implies) before moving
    # the other's employments, so person_update only ends the survivor's own current job.
    merged_custom, custom_taken = _merge_custom(survivor.custom, other.custom, choices)
    dismissed = {int(x) for x in merged_custom.get("not_duplicates", []) if str(x).isdigit()}
    dismissed |= {int(x) for x in (other.custom or {}).get("not_duplicates", []) if str(x).isdigit()}
    dismissed -= {survivor.pk, other.pk}
    if dismissed or "not_duplicates" in merged_custom:
        merged_custom["not_duplicates"] = sorted(dismissed)
    survivor.custom = merged_custom
    survivor.needs_review = False
    if other.last_activity_at and (
        not survivor.last_activity_at or other.last_activity_at > survivor.last_activity_at
    ):
        survivor.last_activity_at = other.last_activity_at
    survivor = actions.person_update(actor=actor, person=survivor, data=dict(changes))

    employment_ids = list(Employment.objects.filter(person=other).values_list("pk", flat=True))
    Employment.objects.filter(pk__in=employment_ids).update(person=survivor)
    current = Employment.objects.filter(pk__in=employment_ids, is_current=True)
    if survivor.organisation_id is not None:
        current = current.exclude(organisation_id=survivor.organisation_id)
    current.update(is_current=False)
    seen: set[tuple] = set()
    for emp in Employment.objects.filter(person=survivor).order_by("-is_current", "started_on", "id"):
        key = (emp.organisation_id, emp.is_current) if emp.is_current else (
            emp.organisation_id, emp.title, emp.started_on, emp.ended_on
        )  # fmt: skip
        if key in seen:
            emp.delete()
        else:
            seen.add(key)
    report["employments_moved"] = len(employment_ids)

    survivor_addresses = {str(a) for a in Address.objects.filter(person=survivor)}
    addresses_moved = 0
    for adr in Address.objects.filter(person=other):
        if str(adr) in survivor_addresses:
            adr.delete()
        else:
            adr.person = survivor
            adr.save(update_fields=["person"])
            survivor_addresses.add(str(adr))
            addresses_moved += 1
    report["addresses_moved"] = addresses_moved

    rel_moved, rel_dropped = 0, 0
    for rel in Relationship.objects.filter(models.Q(from_person=other) | models.Q(to_person=other)):
        src = survivor.pk if rel.from_person_id == other.pk else rel.from_person_id
        dst = survivor.pk if rel.to_person_id == other.pk else rel.to_person_id
        if src == dst:
            rel.delete()
            rel_dropped += 1
            continue
        twin = Relationship.objects.filter(from_person_id=src, to_person_id=dst, kind=rel.kind).first()
        if twin is not None:
            if rel.strength > twin.strength:
                twin.strength = rel.strength
                twin.save(update_fields=["strength"])
            rel.delete()
            rel_dropped += 1
            continue
        rel.from_person_id, rel.to_person_id = src, dst
        rel.save(update_fields=["from_person", "to_person"])
        rel_moved += 1
    report["relationships_moved"] = rel_moved
    report["relationships_dropped"] = rel_dropped

    other_tags = list(other.tags.all())
    survivor.tags.add(*other_tags)
    report["tags_added"] = [t.name for t in other_tags]
    report["custom_from_other"] = custom_taken
    report["other_apps"] = _repoint_generic(Person, survivor, other, _PERSON_HANDLED)

    Person.objects.filter(merged_into=other).update(merged_into=survivor)
    Person.objects.filter(pk=other.pk).update(
        merged_into=survivor, version=F("version") + 1, updated_at=timezone.now(), needs_review=False
    )
    other.merged_into = survivor
    audit_record(
        actor=actor,
        obj=survivor,
        action=AuditEntry.Action.MERGE,
        changes={"merged_from": {"id": other.pk, "name": other.full_name}, "fields": provenance, **report},
        summary=f"Merged {other.full_name} (#{other.pk}) into this person",
    )
    audit_record(
        actor=actor,
        obj=other,
        action=AuditEntry.Action.MERGE,
        changes={"merged_into": {"id": survivor.pk, "name": survivor.full_name}},
        summary=f"Merged into {survivor.full_name} (#{survivor.pk})",
    )
    return survivor


# --- organisations ---------------------------------------------------------------------------


_ORG_HANDLED = {
    "people.organisationdomain.organisation",
    "people.address.organisation",
    "people.organisation.parent",
}


@transaction.atomic
def organisation_merge(
    *,
    actor: User,
    survivor: Organisation,
    other: Organisation,
    field_choices: dict[str, str] | None = None,
) -> Organisation:
    """Merge organisation `other` into `survivor`: people, employments, deals, orders,
    activities, domains, addresses and subsidiaries move; `other` becomes a tombstone."""
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    choices = dict(field_choices or {})
    survivor, other = _lock_pair(Organisation, actor, survivor.pk, other.pk)
    _validate_choices(ORG_MERGE_FIELDS, choices, survivor.custom or {}, other.custom or {})
    changes, provenance = _choose_fields(survivor, other, ORG_MERGE_FIELDS, choices)
    if (
        "parent" in changes
        and changes["parent"] is not None
        and changes["parent"].pk in (survivor.pk, other.pk)
    ):
        changes["parent"] = None
    if survivor.parent_id == other.pk and "parent" not in changes:
        changes["parent"] = None if other.parent_id in (None, survivor.pk) else other.parent
    report: dict[str, Any] = {}

    have = set(survivor.domains.values_list("domain", flat=True))
    moved_domains = []
    for dom in OrganisationDomain.objects.filter(organisation=other):
        if dom.domain in have:
            dom.delete()
        else:
            dom.organisation = survivor
            dom.save(update_fields=["organisation"])
            have.add(dom.domain)
            moved_domains.append(dom.domain)
    report["domains_moved"] = moved_domains

    survivor_addresses = {str(a) for a in Address.objects.filter(organisation=survivor)}
    for adr in Address.objects.filter(organisation=other):
        if str(adr) in survivor_addresses:
            adr.delete()
        else:
            adr.organisation = survivor
            adr.save(update_fields=["organisation"])
            survivor_addresses.add(str(adr))

    report["subsidiaries_moved"] = (
        Organisation.objects.filter(parent=other).exclude(pk=survivor.pk).update(parent=survivor)
    )
    Organisation.objects.filter(pk=other.pk).update(parent=None)
    other.parent = None

    merged_custom, custom_taken = _merge_custom(survivor.custom, other.custom, choices)
    survivor.custom = merged_custom
    report["custom_from_other"] = custom_taken
    survivor = actions.organisation_update(actor=actor, org=survivor, data=dict(changes))

    other_tags = list(other.tags.all())
    survivor.tags.add(*other_tags)
    report["tags_added"] = [t.name for t in other_tags]
    # people, employments, deals, orders, activities and anything added later
    report["moved"] = _repoint_generic(Organisation, survivor, other, _ORG_HANDLED)

    Organisation.objects.filter(merged_into=other).update(merged_into=survivor)
    Organisation.objects.filter(pk=other.pk).update(
        merged_into=survivor, version=F("version") + 1, updated_at=timezone.now()
    )
    other.merged_into = survivor
    audit_record(
        actor=actor,
        obj=survivor,
        action=AuditEntry.Action.MERGE,
        changes={"merged_from": {"id": other.pk, "name": other.name}, "fields": provenance, **report},
        summary=f"Merged {other.name} (#{other.pk}) into this organisation",
    )
    audit_record(
        actor=actor,
        obj=other,
        action=AuditEntry.Action.MERGE,
        changes={"merged_into": {"id": survivor.pk, "name": survivor.name}},
        summary=f"Merged into {survivor.name} (#{survivor.pk})",
    )
    return survivor
