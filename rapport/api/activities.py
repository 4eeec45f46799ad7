"""Activities: notes, calls, meetings, tasks and emails, on a person, organisation or deal."""

from typing import Annotated, Any

from django.db import transaction
from django.db.models import prefetch_related_objects
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from rapport.accounts.models import User
from rapport.activities import actions
from rapport.activities.models import Activity, ActivityKind
from rapport.activities.selectors import activities_visible, activity_detail, open_tasks, timeline
from rapport.api.common import delete_record, patch_fields
from rapport.api.pagination import PageParams, fetch_page, page_out, page_schema
from rapport.api.schemas import (
    ActivityCreate,
    ActivityOut,
    ActivityPatch,
    Chars,
    Id,
    TaskComplete,
    access_out,
    expected_version,
    lookup,
    ref,
    require_writer,
    user_ref,
    visible_ids,
)
from rapport.core.access import get_editable
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.core.pagination import CAP
from rapport.people.models import Organisation, Person
from rapport.people.selectors import organisations_visible, people_visible
from rapport.sales.models import Deal
from rapport.sales.selectors import deals_visible

router = Router()

ActivityPage = page_schema("ActivityPage", ActivityOut)


def _activities_out(user: Any, acts: list[Activity]) -> list[dict[str, Any]]:
    """A page in a fixed number of queries; links to records the caller may not see are null."""
    prefetch_related_objects(acts, "team", "owner", "assignee", "person", "organisation", "deal")
    people = visible_ids(user, Person, [a.person_id for a in acts])
    orgs = visible_ids(user, Organisation, [a.organisation_id for a in acts])
    deals = visible_ids(user, Deal, [a.deal_id for a in acts])
    return [
        {
            "id": a.pk,
            "kind": a.kind,
            "subject": a.subject,
            "body": a.body,
            "occurred_at": a.occurred_at,
            "person": ref(a.person, people, "full_name"),
            "organisation": ref(a.organisation, orgs),
            "deal": ref(a.deal, deals),
            "call_direction": a.call_direction,
            "call_duration_s": a.call_duration_s,
            "call_outcome": a.call_outcome,
            "phone_number": a.phone_number,
            "ends_at": a.ends_at,
            "location": a.location,
            "due_at": a.due_at,
            "assignee": user_ref(a.assignee),
            "done_at": a.done_at,
            "email_from": a.email_from,
            "email_to": a.email_to,
            **access_out(a),
        }
        for a in acts
    ]


def _activity_out(user: Any, activity_id: int) -> dict[str, Any]:
    return _activities_out(user, [activity_detail(user=user, activity_id=activity_id)])[0]


class ActivityQuery(Schema):
    person: Id | None = None
    organisation: Id | None = None
    deal: Id | None = None
    kind: Annotated[str, Chars(10)] = Field("", description="note, call, meeting, task or email.")


@router.get("/activities", response=ActivityPage, tags=["Activities"])
def list_activities(
    request: ApiRequest, filters: Query[ActivityQuery], page: Query[PageParams]
) -> dict[str, Any]:
    """Newest first, like the timeline."""
    user = request.auth
    if filters.kind and filters.kind not in ActivityKind.values:
        raise ActionError(
            "Unknown activity kind.", {"kind": [f"Choose one of {', '.join(ActivityKind.values)}."]}
        )
    result = fetch_page(
        lambda: timeline(
            user=user,
            person_id=filters.person,
            organisation_id=filters.organisation,
            deal_id=filters.deal,
            kind=filters.kind,
            cursor=page.cursor,
            limit=page.limit,
        ),
        page.cursor,
    )
    out = page_out(result, _activities_out(user, result.items))
    if out["total"] is None:
        # The timeline selector does not count; count the same filtered set here.
        qs = activities_visible(user)
        for name in ("person", "organisation", "deal"):
            if getattr(filters, name) is not None:
                qs = qs.filter(**{f"{name}_id": getattr(filters, name)})
        if filters.kind:
            qs = qs.filter(kind=filters.kind)
        total = qs.order_by()[: CAP + 1].count()
        out["total"], out["total_capped"] = min(total, CAP), total > CAP
    return out


@router.get("/tasks", response=list[ActivityOut], tags=["Activities"])
def my_open_tasks(request: ApiRequest, limit: int = Query(50, ge=1, le=200)) -> list[dict[str, Any]]:
    """Open tasks assigned to the caller, soonest due first."""
    user = request.auth
    return _activities_out(user, open_tasks(user=user, limit=limit))


@router.post("/activities", response={201: ActivityOut}, tags=["Activities"])
def create_activity(request: ApiRequest, payload: ActivityCreate) -> Status[dict[str, Any]]:
    """Log an activity on a person, an organisation and/or a deal the caller may see."""
    user = require_writer(request)
    with transaction.atomic():
        activity = actions.activity_log(
            actor=user,
            kind=payload.kind,
            subject=payload.subject,
            body=payload.body,
            person=lookup(people_visible(user), payload.person, "person", "person"),
            organisation=lookup(
                organisations_visible(user), payload.organisation, "organisation", "organisation"
            ),
            deal=lookup(deals_visible(user), payload.deal, "deal", "deal"),
            occurred_at=payload.occurred_at,
            call_direction=payload.call_direction,
            call_duration_s=payload.call_duration_s,
            call_outcome=payload.call_outcome,
            phone_number=payload.phone_number,
            ends_at=payload.ends_at,
            location=payload.location,
            due_at=payload.due_at,
            assignee=lookup(User.objects.filter(is_active=True), payload.assignee, "assignee", "user"),
            email_from=payload.email_from,
            email_to=payload.email_to,
            visibility=payload.visibility,
        )
    return Status(201, _activity_out(user, activity.pk))


@router.get("/activities/{activity_id}", response=ActivityOut, tags=["Activities"])
def get_activity(request: ApiRequest, activity_id: int) -> dict[str, Any]:
    return _activity_out(request.auth, activity_id)


@router.patch("/activities/{activity_id}", response=ActivityOut, tags=["Activities"])
def update_activity(
    request: ApiRequest, activity_id: int, payload: ActivityPatch, version: int | None = None
) -> dict[str, Any]:
    """Change some fields. Pass `?version=N` (or `If-Match: "N"`) for a 409 instead of
    overwriting a newer save. Complete a task with POST /activities/{id}/complete."""
    user = require_writer(request)
    # An activity's one access field, visibility, stays in the data for the action to check;
    # null leaves it unchanged.
    data = patch_fields(
        payload, nullable={"call_duration_s", "ends_at", "due_at", "assignee", "visibility"}, access=()
    )
    if data.get("visibility", "") is None:
        data.pop("visibility")
    with transaction.atomic():
        activity = get_editable(Activity, user, activity_id, activities_visible(user).select_for_update())
        if "assignee" in data:
            data["assignee"] = lookup(
                User.objects.filter(is_active=True), data["assignee"], "assignee", "user"
            )
        starts = data.get("occurred_at", activity.occurred_at)
        ends = data.get("ends_at", activity.ends_at)
        if starts and ends and ends < starts:
            raise ActionError("The meeting ends before it starts.", {"ends_at": ["After the start."]})
        actions.activity_update(
            actor=user, activity=activity, data=data, expected_version=expected_version(request, version)
        )
    return _activity_out(user, activity_id)


@router.post("/activities/{activity_id}/complete", response=ActivityOut, tags=["Activities"])
def complete_task(request: ApiRequest, activity_id: int, payload: TaskComplete) -> dict[str, Any]:
    """Mark a task done (or, with `{"done": false}`, open again)."""
    user = require_writer(request)
    with transaction.atomic():
        activity = get_editable(Activity, user, activity_id, activities_visible(user).select_for_update())
        actions.task_complete(actor=user, activity=activity, done=payload.done)
    return _activity_out(user, activity_id)


@router.delete("/activities/{activity_id}", response={204: None}, tags=["Activities"])
def delete_activity(request: ApiRequest, activity_id: int) -> Status[None]:
    return delete_record(
        request,
        Activity,
        activity_id,
        activities_visible,
        lambda user, activity: actions.activity_delete(actor=user, activity=activity),
    )
