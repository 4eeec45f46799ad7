"""Logging what happened: one action for every kind of activity."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.accounts.models import User
from rapport.activities.models import Activity, ActivityKind, CallDirection, CallOutcome
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.actions import default_team, resolve_access_fields, update_with_version
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.people.models import Organisation, Person
from rapport.sales.models import Deal

ACTIVITY_FIELDS = [
    "subject",
    "body",
    "occurred_at",
    "call_direction",
    "call_duration_s",
    "call_outcome",
    "ends_at",
    "location",
    "due_at",
    "assignee",
    "done_at",
    "visibility",
]


@transaction.atomic
def activity_log(
    *,
    actor: User,
    kind: str,
    subject: str = "",
    body: str = "",
    person: Person | None = None,
    organisation: Organisation | None = None,
    deal: Deal | None = None,
    occurred_at: dt.datetime | None = None,
    call_direction: str = "",
    call_duration_s: int | None = None,
    call_outcome: str = "",
    phone_number: str = "",
    ends_at: dt.datetime | None = None,
    location: str = "",
    due_at: dt.datetime | None = None,
    assignee: User | None = None,
    email_from: str = "",
    email_to: str = "",
    message_id: str = "",
    visibility: str = Visibility.EVERYONE,
) -> Activity:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    if kind not in ActivityKind.values:
        raise ActionError(
            "Unknown activity kind.", {"kind": [f"Choose one of {', '.join(ActivityKind.values)}."]}
        )
    if person is None and organisation is None and deal is None:
        raise ActionError(
            "Log an activity on a person, an organisation or a deal.", {"person": ["Required."]}
        )
    errors: dict[str, list[str]] = {}
    if len(subject) > 300:
        errors["subject"] = ["At most 300 characters."]
    if len(body) > 100000:
        errors["body"] = ["At most 100,000 characters."]
    if kind == ActivityKind.CALL:
        if call_direction and call_direction not in CallDirection.values:
            errors["call_direction"] = ["Inbound or outbound."]
        if call_outcome and call_outcome not in CallOutcome.values:
            errors["call_outcome"] = [f"One of {', '.join(CallOutcome.values)}."]
        if call_duration_s is not None and not 0 <= call_duration_s <= 86400:
            errors["call_duration_s"] = ["Between 0 and 24 hours."]
    if kind == ActivityKind.TASK and not subject.strip():
        errors["subject"] = ["A task needs a title."]
    if kind == ActivityKind.NOTE and not (body.strip() or subject.strip()):
        errors["body"] = ["Write something."]
    if ends_at and occurred_at and ends_at < occurred_at:
        errors["ends_at"] = ["The meeting ends before it starts."]
    if errors:
        raise ActionError("Please correct the highlighted fields.", errors)
    if person is not None and organisation is None:
        organisation = person.organisation
    if deal is not None and organisation is None:
        organisation = deal.organisation
    access = resolve_access_fields(actor=actor, owner=actor, visibility=visibility)
    access["team"] = default_team(actor)
    now = timezone.now()
    activity = Activity.objects.create(
        kind=kind,
        subject=subject.strip(),
        body=body,
        person=person,
        organisation=organisation,
        deal=deal,
        occurred_at=occurred_at or now,
        call_direction=call_direction if kind == ActivityKind.CALL else "",
        call_duration_s=call_duration_s if kind == ActivityKind.CALL else None,
        call_outcome=call_outcome if kind == ActivityKind.CALL else "",
        phone_number=phone_number[:40],
        ends_at=ends_at,
        location=location[:200],
        due_at=due_at,
        assignee=(assignee or actor) if kind == ActivityKind.TASK else assignee,
        email_from=email_from[:320],
        email_to=email_to[:2000],
        message_id=message_id[:500],
        **access,
    )
    if person is not None:
        Person.objects.filter(pk=person.pk).update(last_activity_at=activity.occurred_at)
    audit_record(actor=actor, obj=activity, action=AuditEntry.Action.CREATE, summary=f"Logged {kind}")
    return activity


@transaction.atomic
def activity_update(
    *, actor: User, activity: Activity, data: dict[str, Any], expected_version: int | None = None
) -> Activity:
    # Activities have no owner/team to change here; only their visibility is an access field.
    return update_with_version(
        actor=actor,
        record=activity,
        data=data,
        expected_version=expected_version,
        fields=ACTIVITY_FIELDS,
        access_fields=["visibility"],
    )


def task_complete(*, actor: User, activity: Activity, done: bool = True) -> Activity:
    if activity.kind != ActivityKind.TASK:
        raise ActionError("Only tasks can be completed.")
    return activity_update(actor=actor, activity=activity, data={"done_at": timezone.now() if done else None})


@transaction.atomic
def activity_delete(*, actor: User, activity: Activity) -> None:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    audit_record(
        actor=actor, obj=activity, action=AuditEntry.Action.DELETE, summary=f"Deleted {activity.kind}"
    )
    activity.delete()
