"""The parts of owned records' screens that are the same for every kind: what a record's page
shows besides its fields, the edit and delete screens, small forms posted from a record's page.

An edit form carries the version it was loaded at; the action refuses a stale save with
`ConflictError`. The user then sees, field by field, what the other person saved next to what
they typed, with their input kept and re-bound to the current version, so a deliberate second
save wins. Any other `ActionError` goes back onto the form next to its fields."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Unpack

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from rapport.accounts.models import User
from rapport.activities.forms import ActivityForm
from rapport.audit.actions import history_for
from rapport.core.access import can_edit
from rapport.core.errors import ActionError, ConflictError
from rapport.core.http import AuthedRequest
from rapport.core.models import OwnedRecord
from rapport.web.forms import (
    action_error_text,
    apply_action_error,
    conflict_rows,
    form_errors_text,
    rebound_with_version,
)
from rapport.web.timeline import TimelineTarget, timeline_for

R = TypeVar("R", bound=OwnedRecord)
F = TypeVar("F", bound=forms.Form)


def require_writer(user: User) -> None:
    if not user.can_write:
        raise PermissionDenied("Your role is read-only.")


def require_editable(user: User, record: R, refusal: str) -> R:
    """`record` when `user` may change it; 403 with `refusal` when they may only see it."""
    if not can_edit(user, record):
        raise PermissionDenied(refusal)
    return record


def record_page_context(
    request: AuthedRequest, record: OwnedRecord, **target: Unpack[TimelineTarget]
) -> dict[str, Any]:
    """What every record's page shows besides its own fields: whether the user may change it,
    its timeline (`target` names the record) with the box to log an activity, its history."""
    user = request.user
    return {
        "can_edit": can_edit(user, record),
        "can_write": user.can_write,
        "timeline": timeline_for(user, request.GET.get("tl"), **target),
        "history": history_for(record, limit=50),
        # Built only if the template's cached fragment of blank fields has expired: a form
        # deep-copies its fields when constructed (~1 ms for this one).
        "log_form": SimpleLazyObject(
            lambda: ActivityForm(user=user, initial={"kind": "note"}, hide_targets=True)
        ),
    }


@dataclass(frozen=True)
class RecordPages:
    """Where a kind of record's screens live, named once for its edit and delete views."""

    kind: str  # in words: "Delete this person?"
    nav: str  # the highlighted menu entry
    name: str  # the record's name in the form template's context
    form_template: str
    detail_url: str  # URL names; the detail one takes `pk`
    list_url: str


def edit_page(
    request: AuthedRequest,
    record: R,
    pages: RecordPages,
    *,
    form_class: type[F],
    form_kwargs: Callable[[R], dict[str, Any]],
    initial_for: Callable[[R], dict[str, Any]],
    save: Callable[[F, R, int | None], object],
    reload: Callable[[], R],
) -> HttpResponse:
    """GET shows the form filled from `record`; POST validates, calls `save(form, record,
    expected_version)` and goes to the record's page on success. `form_kwargs(record)` are the
    form's extra arguments; `reload()` loads the record again after a conflict."""
    conflict: list[dict[str, str]] | None = None
    if request.method == "POST":
        form = form_class(request.POST, **form_kwargs(record))
        if form.is_valid():
            try:
                save(form, record, form.cleaned_data.get("version"))
            except ConflictError:
                current = reload()
                conflict = conflict_rows(form, initial_for(current))
                form = rebound_with_version(form_class, request, current.version, **form_kwargs(current))
                record = current
            except ActionError as exc:
                apply_action_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect(pages.detail_url, pk=record.pk)
    else:
        form = form_class(initial=initial_for(record), **form_kwargs(record))
    status = 409 if conflict is not None else 400 if form.errors else 200
    context = {"nav": pages.nav, "form": form, pages.name: record, "conflict": conflict}
    return render(request, pages.form_template, context, status=status)


def delete_page(
    request: AuthedRequest,
    record: OwnedRecord,
    pages: RecordPages,
    *,
    delete: Callable[[], object],
    done: str,
) -> HttpResponse:
    """GET asks for confirmation; POST deletes, then goes to the list with the `done` message.
    An action's refusal goes back to the record with its message."""
    pk = record.pk
    if request.method == "POST":
        try:
            delete()
        except ActionError as exc:
            messages.error(request, exc.message)
            return redirect(pages.detail_url, pk=pk)
        messages.success(request, done)
        return redirect(pages.list_url)
    context = {
        "nav": pages.nav,
        "object": record,
        "cancel_url": reverse(pages.detail_url, kwargs={"pk": pk}),
        "kind": pages.kind,
    }
    return render(request, "people/confirm_delete.html", context)


def act_on_post(
    request: AuthedRequest,
    form: forms.Form,
    act: Callable[[dict[str, Any]], object],
    done: str,
    *,
    detailed: bool = False,
) -> None:
    """For a small form posted from a record's page, which then shows that page again: calls
    `act(cleaned_data)` when the form is valid and says how it went in a message on top.
    `detailed` names the fields in the error message (forms with several fields)."""
    if not form.is_valid():
        if detailed:
            messages.error(request, form_errors_text(form))
        else:
            messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
        return
    try:
        act(form.cleaned_data)
    except ActionError as exc:
        messages.error(request, action_error_text(exc) if detailed else exc.message)
    else:
        messages.success(request, done)
