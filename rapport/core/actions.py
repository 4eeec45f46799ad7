"""Shared write steps for owned records: who may set owner/team/visibility, and optimistic
concurrency so a stale edit never silently overwrites a newer one."""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from rapport.accounts.models import Role, Team, User
from rapport.audit.actions import audit_changes, snapshot
from rapport.core.errors import ActionError, ConflictError
from rapport.core.models import OwnedRecord, Visibility

R = TypeVar("R", bound=OwnedRecord)


def resolve_access_fields(
    *,
    actor: User,
    owner: User | None = None,
    team: Team | None = None,
    visibility: str | None = None,
    current: OwnedRecord | None = None,
) -> dict[str, Any]:
    """Validate the access fields `actor` wants to set and return the ones to apply.

    Only admins and managers may give a record to someone else; anyone may share a record
    with one of their own teams. This is the mass-assignment guard for the UI and the API."""
    values: dict[str, Any] = {}
    privileged = actor.is_admin or actor.role == Role.MANAGER
    if owner is not None and (current is None or owner.pk != current.owner_id):
        if owner.pk != actor.pk and not privileged:
            raise ActionError(
                "Only managers and admins can assign records to someone else.", {"owner": ["Not allowed."]}
            )
        if not owner.is_active:
            raise ActionError("That user is deactivated.", {"owner": ["Deactivated user."]})
        values["owner"] = owner
    if team is not None and (current is None or team.pk != current.team_id):
        if not actor.is_admin and team.pk not in actor.team_ids():
            raise ActionError(
                "You can only share records with your own teams.", {"team": ["Not one of your teams."]}
            )
        values["team"] = team
    if visibility is not None:
        if visibility not in Visibility.values:
            raise ActionError(
                "Unknown visibility.", {"visibility": [f"Choose one of {', '.join(Visibility.values)}."]}
            )
        values["visibility"] = visibility
    return values


def default_team(user: User) -> Team | None:
    ids = user.team_ids()
    return Team.objects.filter(pk=ids[0]).first() if ids else None


def save_with_version(
    *,
    actor: User,
    record: R,
    changes: dict[str, Any],
    expected_version: int | None,
    audit_fields: list[str],
) -> R:
    """Apply `changes` to `record` if nobody saved it since `expected_version`.

    The version check and the bump happen in one conditional UPDATE, so two concurrent saves
    cannot both pass it."""
    model = type(record)
    before = snapshot(record, audit_fields)
    for name, value in changes.items():
        setattr(record, name, value)
    try:
        record.full_clean(
            exclude=[
                "owner",
                "team",
                "organisation",
                "pipeline",
                "stage",
                "parent",
                "person",
                "deal",
                "assignee",
            ]
        )
    except ValidationError as exc:
        # Model validation is the last line of defence; its messages reach the form/API as
        # field errors like every other refusal, never as a 500.
        raise ActionError("Please correct the highlighted fields.", model_errors(exc))
    record.updated_at = timezone.now()
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(current_version=record.version)
    old_version = record.version
    record.version = old_version + 1
    # Run the model's save() logic (derived keys) without writing, then write conditionally.
    if hasattr(record, "refresh_keys"):
        record.refresh_keys()
    field_names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
    values = {name: getattr(record, name) for name in field_names}
    updated = model._default_manager.filter(pk=record.pk, version=old_version).update(**values)
    if updated == 0:
        current = model._default_manager.filter(pk=record.pk).values_list("version", flat=True).first()
        record.version = old_version
        raise ConflictError(current_version=current)
    after = snapshot(record, audit_fields)
    audit_changes(actor=actor, obj=record, before=before, after=after)
    return record


ACCESS_FIELDS = ("owner", "team", "visibility")


def require_write(actor: User) -> None:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")


def check_lengths(model: type[models.Model], data: dict[str, Any]) -> None:
    """Over-long text as a field error, before the database truncates it or fails."""
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        if isinstance(value, str):
            max_length = field_max_length(model, name)
            if max_length and len(value) > max_length:
                errors[name] = [f"At most {max_length} characters (this has {len(value)})."]
    if errors:
        raise ActionError("Some fields are too long.", errors)


def update_with_version(
    *,
    actor: User,
    record: R,
    data: dict[str, Any],
    expected_version: int | None,
    fields: list[str],
    access_fields: Iterable[str] = ACCESS_FIELDS,
    clean: Callable[[dict[str, Any]], None] | None = None,
) -> R:
    """The steps every `*_update` action shares: the actor may write, the access fields pass
    `resolve_access_fields`, nothing outside `fields` is set, then `clean` (the record's own
    rules, which may adjust `data`) and the versioned save. `data` is consumed."""
    require_write(actor)
    access = resolve_access_fields(
        actor=actor, current=record, **{name: data.pop(name, None) for name in access_fields}
    )
    unknown = set(data) - set(fields)
    if unknown:
        raise ActionError(f"Unknown fields: {', '.join(sorted(unknown))}")
    if clean is not None:
        clean(data)
    return save_with_version(
        actor=actor,
        record=record,
        changes={**data, **access},
        expected_version=expected_version,
        audit_fields=fields,
    )


def model_errors(exc: Exception) -> dict[str, list[str]]:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    return {"__all__": [str(exc)]}


def field_max_length(model: type[models.Model], name: str) -> int | None:
    return getattr(model._meta.get_field(name), "max_length", None)
