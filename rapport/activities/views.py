"""Web screens for activities: the list, logging (also the inline box on every timeline),
detail, edit and ticking tasks off."""

from html import escape as _e

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from rapport.accounts.models import User
from rapport.activities import actions
from rapport.activities.forms import ActivityEditForm, ActivityForm, target_initial
from rapport.activities.models import Activity, ActivityKind
from rapport.activities.selectors import activity_detail, activity_rows
from rapport.audit.actions import history_for
from rapport.core.access import can_edit
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest, concrete_user
from rapport.core.pagination import Page
from rapport.web.editing import RecordPages, delete_page, edit_page, require_editable, require_writer
from rapport.web.forms import act_on_form, safe_next
from rapport.web.timeline import mark_visible_links

ACTIVITY_PAGES = RecordPages(
    kind="activity",
    nav="activities",
    name="a",
    form_template="activities/activity_edit.html",
    detail_url="activity-detail",
    list_url="activity-list",
)


@login_required
def activity_list_view(request: AuthedRequest) -> HttpResponse:
    user = request.user
    kind = request.GET.get("kind", "")
    mine = request.GET.get("mine") == "1"
    open_tasks = request.GET.get("open") == "1"
    error = None
    try:
        page = activity_rows(
            user=user,
            kind=kind,
            owner_id=user.pk if mine else None,
            open_tasks=open_tasks,
            cursor=request.GET.get("cursor") or None,
            limit=50,
        )
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    concrete = concrete_user(request)
    context = {
        "nav": "activities",
        "page": page,
        "rows_html": mark_safe(  # noqa: S308 — every value is escaped in _activity_row
            "".join(_activity_row(concrete, a) for a in page.items)
        ),
        "kinds": ActivityKind.choices,
        "kind": kind,
        "mine": mine,
        "open_tasks": open_tasks,
        "error": error,
        "is_first_page": not request.GET.get("cursor"),
    }
    return render(request, "activities/activity_list.html", context, status=400 if error else 200)


KIND_LABELS = dict(ActivityKind.choices)


def _activity_row(user: User, a: Activity) -> str:
    """One row of the activities list, built in Python with every value escaped (as the
    people and deals lists): 50 rows of dates, links and badges through the template engine
    were two thirds of the page's CPU."""
    mark_visible_links(user, a)
    when = timezone.localtime(a.occurred_at)
    label = KIND_LABELS.get(a.kind, a.kind)
    title = Truncator(a.subject or a.body or label).chars(100)
    about = []
    if a.person_id and a.person_visible:  # type: ignore[attr-defined]
        about.append(f'<a href="/people/{a.person_id}/">{_e(str(a.person))}</a>')
    if a.deal_id and a.deal_visible:  # type: ignore[attr-defined]
        about.append(f'<a href="/deals/{a.deal_id}/">{_e(str(a.deal))}</a>')
    if a.organisation_id and a.organisation_visible and not a.person_visible:  # type: ignore[attr-defined]
        about.append(f'<a href="/organisations/{a.organisation_id}/">{_e(str(a.organisation))}</a>')
    status = ""
    if a.kind == ActivityKind.TASK:
        if a.done_at:
            status = '<span class="badge badge-won">done</span>'
        else:
            due = f' <span class="small">due {_e(str(naturaltime(a.due_at)))}</span>' if a.due_at else ""
            status = f'<span class="badge">open</span>{due}'
    return (
        f'<tr><td class="nowrap"><time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M}</time></td>'
        f'<td>{_e(label)}</td><td><a href="/activities/{a.pk}/" dir="auto">{_e(title)}</a></td>'
        f"<td>{' '.join(about)}</td><td>{_e(str(a.owner))}</td><td>{status}</td></tr>"
    )


@login_required
def activity_create_view(request: AuthedRequest) -> HttpResponse:
    """Also the target of the inline "log" box on people, organisations and deals: a valid
    entry goes back to `next`; an invalid one shows the full form with the input kept."""
    require_writer(request.user)
    if request.method == "POST":
        form = ActivityForm(request.POST, user=request.user)
        activity = act_on_form(form, lambda: actions.activity_log(actor=request.user, **form.log_data()))
        if activity is not None:
            messages.success(request, f"{activity.get_kind_display()} logged.")
            return redirect(safe_next(request, f"/activities/{activity.pk}/"))
    else:
        kind = request.GET.get("kind", "note")
        initial = {
            "kind": kind if kind in ActivityKind.values else "note",
            **target_initial(request.user, request.GET),
        }
        form = ActivityForm(initial=initial, user=request.user)
    context = {"nav": "activities", "form": form, "next": safe_next(request, "")}
    return render(request, "activities/activity_form.html", context, status=400 if form.errors else 200)


@login_required
def activity_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    activity = activity_detail(user=request.user, activity_id=pk)
    mark_visible_links(request.user, activity)
    context = {
        "nav": "activities",
        "a": activity,
        "person_visible": activity.person_visible,  # type: ignore[attr-defined]
        "organisation_visible": activity.organisation_visible,  # type: ignore[attr-defined]
        "deal_visible": activity.deal_visible,  # type: ignore[attr-defined]
        "can_edit": can_edit(request.user, activity),
        "history": history_for(activity, limit=50),
    }
    return render(request, "activities/activity_detail.html", context)


def _activity_for_write(request: AuthedRequest, pk: int) -> Activity:
    activity = activity_detail(user=request.user, activity_id=pk)
    return require_editable(request.user, activity, "You can see this activity but not change it.")


@login_required
def activity_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    def save(form: ActivityEditForm, activity: Activity, version: int | None) -> None:
        actions.activity_update(
            actor=request.user, activity=activity, data=form.update_data(), expected_version=version
        )

    return edit_page(
        request,
        _activity_for_write(request, pk),
        ACTIVITY_PAGES,
        form_class=ActivityEditForm,
        # The form offers the fields of the activity's own kind.
        form_kwargs=lambda activity: {"activity": activity},
        initial_for=ActivityEditForm.initial_for,
        save=save,
        reload=lambda: activity_detail(user=request.user, activity_id=pk),
    )


@login_required
@require_POST
def activity_done_view(request: AuthedRequest, pk: int) -> HttpResponse:
    activity = _activity_for_write(request, pk)
    done = request.POST.get("done", "1") == "1"
    try:
        actions.task_complete(actor=request.user, activity=activity, done=done)
        messages.success(request, "Task done." if done else "Task reopened.")
    except ActionError as exc:
        messages.error(request, exc.message)
    return redirect(safe_next(request, f"/activities/{pk}/"))


@login_required
def activity_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    activity = _activity_for_write(request, pk)
    return delete_page(
        request,
        activity,
        ACTIVITY_PAGES,
        delete=lambda: actions.activity_delete(actor=request.user, activity=activity),
        done="Deleted.",
    )
