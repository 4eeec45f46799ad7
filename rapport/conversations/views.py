"""Agent screens: the inbox lists and the conversation page (history, reply, note, assign,
status, priority, call log), plus the small JSON endpoint the page polls for new messages."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from rapport.accounts.models import Team, User
from rapport.conversations import actions, selectors
from rapport.conversations.models import (
    AssignMode,
    BusinessHours,
    CallDirection,
    CallOutcome,
    CannedAnswer,
    Conversation,
    Notification,
    Priority,
    RoutingRule,
    SlaPolicy,
    Status,
)
from rapport.conversations.templatetags.inbox import (
    csrf_input,
    deal_items,
    identity_items,
    inbox_rows,
    merge_options,
    message_items,
    options,
    other_conversation_items,
    view_tabs,
)
from rapport.core.access import can_see
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.core.pagination import Page
from rapport.people.models import Person
from rapport.sales.models import Deal
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


STATUS_FILTERS = [("open", "Open (new, open, waiting)"), ("any", "Any"), *Status.choices]
# The bulk bar's fixed lists, built once.
BULK_STATUS_OPTIONS = mark_safe(options(Status.choices))  # noqa: S308 - escaped by options()
PRIORITY_OPTIONS = mark_safe(options(Priority.choices))  # noqa: S308 - escaped by options()
# The call form's, likewise.
CALL_DIRECTION_OPTIONS = mark_safe(options(CallDirection.choices, CallDirection.OUTBOUND.value))  # noqa: S308
CALL_OUTCOME_OPTIONS = mark_safe(options(CallOutcome.choices))  # noqa: S308 - escaped by options()


@login_required
@require_GET
def inbox_view(request: AuthedRequest) -> HttpResponse:
    """The inbox lists. Rows, agents, channels and the unread count are read in plain SQL and
    the repeated markup (rows, options, view tabs) built in Python: through the ORM and
    template loops the page cost ~5 ms of CPU, and agents keep it open all day."""
    user = request.user
    filters = selectors.InboxFilters(
        view=request.GET.get("view", "mine"),
        status=request.GET.get("status", "open"),
        channel=_int(request.GET.get("channel")),
        q=request.GET.get("q", "")[:100],
        assignee=_int(request.GET.get("assignee")),
    )
    error = None
    can_write = user.can_write
    visible_people: set[int] = set()
    try:
        # The rows, their customers' visibility and the extras in one round trip.
        page, visible_people, extras = selectors.inbox_screen(
            user=user, filters=filters, cursor=request.GET.get("cursor") or None, agents=can_write
        )
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
        extras = selectors.inbox_extras(user, agents=can_write)
    context = {
        "nav": "inbox",
        "page": page,
        "filters": filters,
        "view_tabs": mark_safe(view_tabs(VIEW_LABELS, filters.view)),  # noqa: S308 - escaped there
        "status_options": mark_safe(options(STATUS_FILTERS, filters.status)),  # noqa: S308 - escaped there
        "channel_options": mark_safe(options(extras.channels, filters.channel)),  # noqa: S308
        "rows": inbox_rows(page.items, can_write, visible_people),
        "error": error,
        "unread": extras.unread,
        # Only writers get the assign controls.
        "agent_options": mark_safe(options(extras.agents)) if can_write else "",  # noqa: S308
        "priority_options": PRIORITY_OPTIONS,
        "bulk_status_options": BULK_STATUS_OPTIONS,
        "back": request.get_full_path()[:500],
    }
    return render(request, "conversations/inbox.html", context, status=400 if error else 200)


def _agents_for(user: User) -> list[User]:
    qs = User.objects.filter(is_active=True).exclude(role="readonly").exclude(username="rapport-bot")
    if not user.is_admin:
        qs = qs.filter(teams__id__in=user.team_ids())
    # Only what str(user) and the <option> value need.
    return list(
        qs.distinct().only("pk", "username", "first_name", "last_name").order_by("first_name", "username")
    )


@login_required
@require_GET
def conversation_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The conversation page, read through selectors.conversation_page (plain SQL) with the
    history and the option lists built in Python: through the ORM and template loops it cost
    ~13 ms of CPU, and it is the page agents work in."""
    user = request.user
    # A writer may edit every conversation they may see: their agents are read with it.
    data = selectors.conversation_page(user, conversation_id, agents=user.can_write)
    conv = data.conversation
    can_edit = selectors.can_edit_ids(user, conv.assignee_id, conv.team_id)
    identities = data.identities
    emails = [i.value for i in identities if i.kind == "email"]
    reply_channel = conv.reply_channel
    context: dict[str, Any] = {
        "nav": "inbox",
        "c": conv,
        "history_html": message_items(
            data.history, can_edit=can_edit, csrf_input=csrf_input(request), request=request
        ),
        "last_id": data.history[-1].id if data.history else 0,
        "person_visible": data.person_visible,
        # A visible person may work at a private organisation: its name is not shown then.
        "org_visible": conv.person is not None
        and conv.person.organisation is not None
        and can_see(user, conv.person.organisation),
        "identities_html": identity_items(identities),
        "phones": [i.value for i in identities if i.kind == "phone"],
        "emails": emails,
        "other_conversations": data.other_conversations,
        "others_html": other_conversation_items(data.other_conversations),
        "deals_html": deal_items(data.deals),
        "can_edit": can_edit,
        "channels_used": ", ".join(data.channels_used) or "none",
        "can_go_private": reply_channel is not None
        and reply_channel.kind in actions.DM_KINDS
        and conv.reply_mode != "private",
        "merged_into": conv.merged_into if conv.merged_into_id else None,
        "merged_from": data.merged_from,
        "unread": data.unread,
    }
    if can_edit:  # only writers get the controls
        agents = data.agents  # read with the page: a user who may edit it is a writer
        if conv.assignee_id is not None and all(pk != conv.assignee_id for pk, _ in agents):
            # Assigned to someone outside the agent's teams: listed, so the form shows who has
            # it instead of "Unassigned" (and "Assign" left as it is changes nothing).
            agents = [(conv.assignee_id, str(conv.assignee)), *agents]
        context.update(
            agent_options=mark_safe(options(agents, conv.assignee_id)),  # noqa: S308
            status_options=mark_safe(options(Status.choices, conv.status)),  # noqa: S308
            priority_options=mark_safe(options(Priority.choices, conv.priority)),  # noqa: S308
            email_options=mark_safe(options([(v, v) for v in emails], conv.reply_to)),  # noqa: S308
            merge_options=mark_safe(merge_options(data.other_conversations)),  # noqa: S308
            call_direction_options=CALL_DIRECTION_OPTIONS,
            call_outcome_options=CALL_OUTCOME_OPTIONS,
        )
    if data.unread:
        # Without unread notices there is nothing to mark: no write (and no SQLite write lock)
        # on every page view.
        Notification.objects.filter(user=user, conversation_id=conv.pk, read_at__isnull=True).update(
            read_at=conv.updated_at
        )
    return render(request, "conversations/conversation.html", context)


def _deals_of(user: User, person: Person) -> list[Deal]:
    """The ten newest visible deals the person takes part in or their organisation has. Two
    indexed top-10 queries merged here: one query with an OR across the participants join
    read the whole deals table."""
    top = (
        deals_visible(user)
        .select_related("stage")
        .only("id", "name", "amount", "currency", "stage", "stage__name")  # what the panel shows
        .order_by("-id")
    )
    found = {d.pk: d for d in top.filter(participants__person=person).distinct()[:10]}
    if person.organisation_id:
        found.update((d.pk, d) for d in top.filter(organisation_id=person.organisation_id)[:10])
    return [found[k] for k in sorted(found, reverse=True)[:10]]


@login_required
@require_GET
def messages_json(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    """What an open conversation page polls for every 1.5 s: the messages after `after`, as the
    history's markup. Two indexed reads in plain SQL and, mostly, nothing to render."""
    user = request.user
    head = selectors.conversation_head_row(user, conversation_id)
    after = _int(request.GET.get("after")) or 0
    items = selectors.message_rows(head.id, after=after, limit=100)
    html = (
        message_items(
            items,
            can_edit=selectors.can_edit_ids(user, head.assignee_id, head.team_id),
            csrf_input=csrf_input(request),
            request=request,
        )
        if items
        else ""
    )
    return JsonResponse(
        {
            "last_id": items[-1].id if items else after,
            "count": len(items),
            "html": html,
            "status": head.status,
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
def message_sentiment_view(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    label = request.POST.get("label", "")

    def go(conv: Conversation) -> str:
        message = get_object_or_404(conv.messages, pk=message_id)
        actions.message_sentiment_correct(actor=request.user, message=message, label=label)
        return f"Marked as {label}; Rapport learns from this."

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


# --- bulk -------------------------------------------------------------------------------


@login_required
@require_POST
def bulk_view(request: AuthedRequest) -> HttpResponse:
    back = request.POST.get("next", "")
    back = back if back.startswith("/inbox/") and "//" not in back else "/inbox/"
    try:
        result = actions.conversations_bulk(
            actor=request.user,
            ids=request.POST.getlist("ids")[: actions.MAX_BULK + 1],
            action=request.POST.get("action", ""),
            value=request.POST.get("value", "")[:100],
        )
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        done, skipped = len(result["done"]), len(result["skipped"])
        messages.success(
            request,
            f"Changed {done} conversation{'s' if done != 1 else ''}"
            + (f"; {skipped} skipped (not yours to change, or refused)." if skipped else "."),
        )
    return redirect(back)


# --- notifications ----------------------------------------------------------------------


@login_required
def notifications_view(request: AuthedRequest) -> HttpResponse:
    if request.method == "POST":
        Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
        messages.success(request, "All notices marked as read.")
        return redirect("notifications")
    return render(
        request,
        "conversations/notifications.html",
        {
            "nav": "inbox",
            "notices": selectors.notifications_of(request.user),
            "unread": selectors.unread_count(request.user),
        },
    )


# --- merge, undo, channel hop -----------------------------------------------------------


@login_required
@require_POST
def merge_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        other_id = _int(request.POST.get("other"))
        try:
            other = selectors.conversation_for_edit(request.user, other_id)
        except Http404:
            raise ActionError("No conversation of yours has that number.")
        actions.conversation_merge(actor=request.user, survivor=conv, other=other)
        return f"Conversation {other.pk} merged into this one. Undo it from that conversation's page."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def unmerge_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        actions.conversation_merge_undo(actor=request.user, conversation=conv)
        return "Merge undone: this conversation has its messages back."

    return _act(request, conversation_id, go)


@login_required
@require_POST
def hop_view(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    def go(conv: Conversation) -> str:
        message = actions.conversation_hop(
            actor=request.user,
            conversation=conv,
            mode=request.POST.get("mode", ""),
            address=request.POST.get("address", "")[:320],
        )
        return message.text

    return _act(request, conversation_id, go)


# --- canned answers ---------------------------------------------------------------------


def _canned_form_context(
    request: AuthedRequest, canned: CannedAnswer | None, data: dict, errors: dict
) -> dict:
    user = request.user
    teams = Team.objects.all() if user.is_admin else Team.objects.filter(pk__in=user.team_ids())
    return {
        "nav": "inbox",
        "canned": canned,
        "data": data,
        "errors": errors,
        "teams": list(teams.order_by("name")),
        "placeholders": actions.PLACEHOLDERS,
    }


@login_required
def canned_list_view(request: AuthedRequest) -> HttpResponse:
    user = request.user
    data = {"title": "", "body": "", "team": ""}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = {k: request.POST.get(k, "") for k in ("title", "body", "team")}
        try:
            canned = actions.canned_save(actor=user, data=data)
        except ActionError as exc:
            messages.error(request, exc.message)
            errors, status = exc.field_errors or {}, 400
        else:
            messages.success(request, f"Canned answer “{canned.title}” saved.")
            return redirect("canned-list")
    context = _canned_form_context(request, None, data, errors)
    rows = list(selectors.canned_visible(user))
    context["rows"] = [(c, actions.can_edit_canned(user, c)) for c in rows]
    return render(request, "conversations/canned_list.html", context, status=status)


@login_required
def canned_edit_view(request: AuthedRequest, canned_id: int) -> HttpResponse:
    canned = selectors.canned_get(request.user, canned_id)
    if not actions.can_edit_canned(request.user, canned):
        raise Http404("Not found")
    data = {"title": canned.title, "body": canned.body, "team": canned.team_id or ""}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        if request.POST.get("delete"):
            actions.canned_delete(actor=request.user, canned=canned)
            messages.success(request, "Canned answer deleted.")
            return redirect("canned-list")
        data = {k: request.POST.get(k, "") for k in ("title", "body", "team")}
        try:
            actions.canned_save(actor=request.user, canned=canned, data=data)
        except ActionError as exc:
            messages.error(request, exc.message)
            errors, status = exc.field_errors or {}, 400
        else:
            messages.success(request, "Canned answer saved.")
            return redirect("canned-list")
    return render(
        request,
        "conversations/canned_edit.html",
        _canned_form_context(request, canned, data, errors),
        status=status,
    )


@login_required
@require_GET
def canned_json(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    """The reply box's picker: answers whose title starts with (then contains) `q`, filled in
    for this conversation. Plain text; the page inserts it as the textarea's value."""
    conv = selectors.conversation_get(request.user, conversation_id)
    q = request.GET.get("q", "")[:100].strip().lower()
    rows = list(selectors.canned_visible(request.user)[:500])
    if q:
        rows = [c for c in rows if q in c.title.lower()]
        rows.sort(key=lambda c: (not c.title.lower().startswith(q), c.title.lower()))
    return JsonResponse(
        {
            "items": [
                {
                    "id": c.pk,
                    "title": c.title,
                    "shared": c.team_id is not None,
                    "text": actions.canned_render(c.body, conversation=conv, agent=request.user),
                }
                for c in rows[:20]
            ]
        }
    )


# --- routing rules and SLA policies (admins) --------------------------------------------


def _require_admin_page(request: AuthedRequest) -> None:
    if not request.user.is_admin:
        raise Http404("Not found")


RULE_LIST_FIELDS = ("channel_kinds", "sentiments", "urgencies")
RULE_TEXT_LIST_FIELDS = ("words", "person_tags", "organisation_tags", "add_tags")


def _rule_data(post) -> dict:  # noqa: ANN001 - QueryDict
    data: dict = {"name": post.get("name", "")[:200]}
    for key in RULE_LIST_FIELDS:
        data[key] = post.getlist(key)[:50]
    for key in RULE_TEXT_LIST_FIELDS:
        data[key] = post.get(key, "")[:5000]
    for key in ("business_hours", "assign_mode", "set_priority"):
        data[key] = post.get(key, "")[:20]
    for key in ("organisation_owner", "assign_user", "assign_team"):
        data[key] = post.get(key, "")[:20]
    vip = post.get("person_vip", "")
    data["person_vip"] = {"yes": True, "no": False}.get(vip)
    data["auto_reply"] = post.get("auto_reply", "")[:6000]
    for key in ("is_active", "stop", "escalate"):
        data[key] = post.get(key) == "on"
    return data


def _rule_context(rule: RoutingRule | None, values: dict, errors: dict) -> dict:
    from rapport.channels.models import ChannelKind

    return {
        "nav": "inbox",
        "rule": rule,
        "v": values,
        "errors": errors,
        "kinds": ChannelKind.choices,
        "sentiments": actions.SENTIMENTS,
        "urgencies": actions.URGENCIES,
        "business_hours": BusinessHours.choices,
        "assign_modes": AssignMode.choices,
        "priorities": Priority.choices,
        "agents": list(
            User.objects.filter(is_active=True)
            .exclude(role="readonly")
            .exclude(username="rapport-bot")
            .order_by("first_name", "username")
        ),
        "teams": list(Team.objects.order_by("name")),
    }


def _rule_values(rule: RoutingRule) -> dict:
    return {
        "name": rule.name,
        "is_active": rule.is_active,
        "stop": rule.stop,
        "channel_kinds": rule.channel_kinds,
        "words": ", ".join(rule.words),
        "sentiments": rule.sentiments,
        "urgencies": rule.urgencies,
        "business_hours": rule.business_hours,
        "person_vip": rule.person_vip,
        "person_tags": ", ".join(rule.person_tags),
        "organisation_tags": ", ".join(rule.organisation_tags),
        "organisation_owner": rule.organisation_owner_id or "",
        "assign_mode": rule.assign_mode,
        "assign_user": rule.assign_user_id or "",
        "assign_team": rule.assign_team_id or "",
        "set_priority": rule.set_priority,
        "add_tags": ", ".join(rule.add_tags),
        "auto_reply": rule.auto_reply,
        "escalate": rule.escalate,
    }


@login_required
def routing_list_view(request: AuthedRequest) -> HttpResponse:
    _require_admin_page(request)
    rules = list(RoutingRule.objects.select_related("assign_user", "assign_team"))
    return render(request, "conversations/routing_list.html", {"nav": "inbox", "rules": rules})


@login_required
def routing_edit_view(request: AuthedRequest, rule_id: int | None = None) -> HttpResponse:
    _require_admin_page(request)
    rule = get_object_or_404(RoutingRule, pk=rule_id) if rule_id else None
    values = _rule_values(rule) if rule else {"is_active": True, "stop": True}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = _rule_data(request.POST)
        values = {**data, "person_vip": data["person_vip"]}
        try:
            actions.routing_rule_save(actor=request.user, rule=rule, data=data)
        except ActionError as exc:
            messages.error(request, exc.message)
            errors, status = exc.field_errors or {}, 400
        else:
            messages.success(request, "Routing rule saved.")
            return redirect("routing-list")
    return render(
        request, "conversations/routing_edit.html", _rule_context(rule, values, errors), status=status
    )


@login_required
@require_POST
def routing_move_view(request: AuthedRequest, rule_id: int) -> HttpResponse:
    _require_admin_page(request)
    rule = get_object_or_404(RoutingRule, pk=rule_id)
    if request.POST.get("delete"):
        actions.routing_rule_delete(actor=request.user, rule=rule)
        messages.success(request, f"Rule “{rule.name}” deleted.")
    else:
        actions.routing_rule_move(actor=request.user, rule=rule, up=request.POST.get("direction") == "up")
    return redirect("routing-list")


@login_required
def sla_view(request: AuthedRequest) -> HttpResponse:
    _require_admin_page(request)
    from rapport.conversations.routing import DEFAULT_SLA, DEFAULT_WARN_MINUTES

    errors: dict = {}
    failed = ""
    posted: dict = {}
    status = 200
    if request.method == "POST":
        priority = request.POST.get("priority", "")
        policy = SlaPolicy.objects.filter(priority=priority).first()
        if request.POST.get("reset"):
            if policy is not None:
                actions.sla_policy_delete(actor=request.user, policy=policy)
            messages.success(request, "Back to the default.")
            return redirect("sla-list")
        posted = {
            k: request.POST.get(k, "")[:20]
            for k in ("priority", "first_response_minutes", "resolution_minutes", "warn_before_minutes")
        }
        try:
            actions.sla_policy_save(actor=request.user, policy=policy, data=posted)
        except ActionError as exc:
            messages.error(request, exc.message)
            errors, failed, status = exc.field_errors or {}, priority, 400
        else:
            messages.success(request, "SLA policy saved.")
            return redirect("sla-list")
    policies = {p.priority: p for p in SlaPolicy.objects.all()}
    rows = []
    for value, label in Priority.choices:
        p = policies.get(value)
        first, resolution = DEFAULT_SLA[value]
        row = {
            "priority": value,
            "label": label,
            "custom": p is not None,
            "first_response_minutes": p.first_response_minutes if p else first,
            "resolution_minutes": p.resolution_minutes if p else resolution,
            "warn_before_minutes": p.warn_before_minutes if p else DEFAULT_WARN_MINUTES,
            "errors": errors if value == failed else {},
        }
        if value == failed:
            row.update({k: v for k, v in posted.items() if k != "priority"})
        rows.append(row)
    return render(request, "conversations/sla.html", {"nav": "inbox", "rows": rows}, status=status)
