"""Agent screens: the inbox lists and the conversation page (history, reply, note, assign,
status, priority, call log), plus the small JSON endpoint the page polls for new messages."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from rapport.accounts.models import User
from rapport.channels.models import Channel
from rapport.conversations import actions, selectors
from rapport.conversations.models import (
    CallDirection,
    CallOutcome,
    Conversation,
    Notification,
    Priority,
    Status,
)
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.core.pagination import Page
from rapport.people.models import Identity
from rapport.sales.selectors import deals_visible

VIEW_LABELS = [
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("teams", "My teams"),
    ("all", "All"),
    ("sla", "SLA at risk"),
]


def _int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


@login_required
@require_GET
def inbox_view(request: AuthedRequest) -> HttpResponse:
    user = request.user
    filters = selectors.InboxFilters(
        view=request.GET.get("view", "mine"),
        status=request.GET.get("status", "open"),
        channel=_int(request.GET.get("channel")),
        q=request.GET.get("q", "")[:100],
    )
    error = None
    try:
        page = selectors.inbox(user=user, filters=filters, cursor=request.GET.get("cursor") or None)
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    channels = (
        Channel.objects.order_by("name")
        if user.is_admin
        else Channel.objects.filter(Q(team_id__in=user.team_ids())).order_by("name")
    )
    context = {
        "nav": "inbox",
        "page": page,
        "filters": filters,
        "views": VIEW_LABELS,
        "statuses": [("open", "Open (new, open, waiting)"), ("any", "Any"), *Status.choices],
        "channels": channels,
        "error": error,
        "unread": Notification.objects.filter(user=user, read_at__isnull=True).count(),
    }
    return render(request, "conversations/inbox.html", context, status=400 if error else 200)


def _agents_for(user: User) -> list[User]:
    qs = User.objects.filter(is_active=True).exclude(role="readonly").exclude(username="rapport-bot")
    if not user.is_admin:
        qs = qs.filter(teams__id__in=user.team_ids())
    return list(qs.distinct().order_by("first_name", "username"))


@login_required
@require_GET
def conversation_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    user = request.user
    conv = selectors.conversation_get(user, conversation_id)
    history = selectors.messages_of(conv)
    person = conv.person
    from rapport.people.selectors import people_visible

    person_visible = person is not None and people_visible(user).filter(pk=person.pk).exists()
    identities = list(Identity.objects.filter(person=person)) if person_visible else []
    deals = []
    if person is not None and person_visible:
        dq = Q(participants__person=person)
        if person.organisation_id:
            dq |= Q(organisation_id=person.organisation_id)
        deals = list(deals_visible(user).filter(dq).select_related("stage").distinct().order_by("-id")[:10])
    context = {
        "nav": "inbox",
        "c": conv,
        "history": history,
        "last_id": history[-1].pk if history else 0,
        "person_visible": person_visible,
        "identities": identities,
        "phones": [i.value for i in identities if i.kind == "phone"],
        "other_conversations": selectors.person_conversations(user, conv.person_id, exclude=conv.pk)
        if person_visible
        else [],
        "deals": deals,
        "can_edit": selectors.can_edit_conversation(user, conv),
        "agents": _agents_for(user),
        "statuses": Status.choices,
        "priorities": Priority.choices,
        "call_directions": CallDirection.choices,
        "call_outcomes": CallOutcome.choices,
        "channels_used": list(conv.channels.all()),
    }
    Notification.objects.filter(user=user, conversation=conv, read_at__isnull=True).update(
        read_at=conv.updated_at
    )
    return render(request, "conversations/conversation.html", context)


@login_required
@require_GET
def messages_json(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    conv = selectors.conversation_get(request.user, conversation_id)
    after = _int(request.GET.get("after")) or 0
    items = selectors.messages_of(conv, after=after, limit=100)
    html = render_to_string("conversations/_messages.html", {"history": items}, request=request)
    return JsonResponse(
        {
            "last_id": items[-1].pk if items else after,
            "count": len(items),
            "html": html,
            "status": conv.status,
        }
    )


def _act(request: AuthedRequest, conversation_id: int, fn: Callable[[Conversation], str]) -> HttpResponse:
    conv = selectors.conversation_for_edit(request.user, conversation_id)
    try:
        note = fn(conv)
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        if note:
            messages.success(request, note)
    return redirect(f"/inbox/{conv.pk}/")


@login_required
@require_POST
def reply_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    text = request.POST.get("text", "")

    def go(conv: Conversation) -> str:
        if request.POST.get("kind") == "note":
            actions.conversation_note(actor=request.user, conversation=conv, text=text)
            return "Note added."
        actions.conversation_reply(actor=request.user, conversation=conv, text=text)
        return "Reply queued for sending."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def assign_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    raw = request.POST.get("assignee", "")

    def go(conv: Conversation) -> str:
        assignee = None
        if raw:
            assignee = User.objects.filter(pk=_int(raw) or 0).first()
            if assignee is None:
                raise ActionError("Unknown user.")
        actions.conversation_assign(
            actor=request.user,
            conversation=conv,
            assignee=assignee,
            expected_version=_int(request.POST.get("version")),
        )
        return f"Assigned to {assignee}." if assignee else "Unassigned."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def status_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        actions.conversation_set_status(
            actor=request.user,
            conversation=conv,
            status=request.POST.get("status", ""),
            expected_version=_int(request.POST.get("version")),
        )
        return f"Status: {conv.get_status_display()}."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def priority_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        actions.conversation_set_priority(
            actor=request.user,
            conversation=conv,
            priority=request.POST.get("priority", ""),
            expected_version=_int(request.POST.get("version")),
        )
        return f"Priority: {conv.get_priority_display()}."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def call_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        try:
            minutes = float(request.POST.get("duration_min") or 0)
        except ValueError:
            raise ActionError("The duration must be a number of minutes.")
        if not 0 <= minutes <= 24 * 60:
            raise ActionError("The duration must be between 0 and 1,440 minutes.")
        actions.call_log(
            actor=request.user,
            conversation=conv,
            direction=request.POST.get("direction", ""),
            number=request.POST.get("number", "")[:40],
            duration_s=round(minutes * 60),
            outcome=request.POST.get("outcome", ""),
            notes=request.POST.get("notes", ""),
        )
        return "Call logged."

    return _act(request, conversation_id, go)
