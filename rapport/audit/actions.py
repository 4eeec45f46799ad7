"""Audit trail writes. Values are stored as display strings so the trail stays readable even
after the referenced rows change or disappear."""

from typing import Any

from django.db import models

from rapport.audit.models import AuditEntry


def _display(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return str(value)
    return str(value)


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    data = {}
    for name in fields:
        field = obj._meta.get_field(name)
        if isinstance(field, models.Field) and field.is_relation and field.many_to_one:
            # The related object itself: compared by pk, shown by name in the trail.
            data[name] = getattr(obj, name) if getattr(obj, field.attname) is not None else None
        else:
            data[name] = getattr(obj, name)
    return data


def audit_record(
    *, actor: Any, obj: models.Model, action: str, changes: dict | None = None, summary: str = ""
) -> AuditEntry:
    return AuditEntry.objects.create(
        model=obj._meta.label_lower,
        object_id=obj.pk,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        changes=changes or {},
        summary=summary[:300],
    )


def audit_changes(
    *, actor: Any, obj: models.Model, before: dict[str, Any], after: dict[str, Any]
) -> AuditEntry | None:
    changes = {k: [_display(before[k]), _display(after[k])] for k in after if before.get(k) != after[k]}
    if not changes:
        return None
    return audit_record(actor=actor, obj=obj, action=AuditEntry.Action.UPDATE, changes=changes)


def history_for(obj: models.Model, limit: int = 100) -> list[AuditEntry]:
    """A record's changes, newest first, with who made them. Read in plain SQL (core.reads):
    it is on every record's page."""
    from rapport.core import reads

    entries = reads.instances(
        AuditEntry,
        "WHERE audit_auditentry.model = %s AND audit_auditentry.object_id = %s "
        "ORDER BY audit_auditentry.at DESC, audit_auditentry.id DESC LIMIT %s",
        [obj._meta.label_lower, obj.pk, limit],
    )
    reads.attach(entries, "actor")
    return entries
