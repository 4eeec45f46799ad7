import datetime as dt
from collections.abc import Iterable
from html import escape as e
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from rapport.conversations.models import Priority, SlaState, Status
from rapport.conversations.sanitise import clean_html

register = template.Library()


@register.filter
def sanitised(html: str) -> SafeString:
    """Stored HTML is clean already; cleaning again at render time (idempotent) means a row
    written by anything other than the pipeline still cannot inject markup."""
    return mark_safe(clean_html(html or ""))  # noqa: S308 - nh3 allow-list output


def _minute(value: dt.datetime) -> tuple[str, str]:
    """(ISO 8601, "Y-m-d H:i") in the current time zone, as the `date` filter gives them."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return (
        local.isoformat(),
        f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}",
    )


# get_FOO_display() rebuilds its choices dict on every call; fifty rows × three of them add up.
_LABELS = {
    "status": dict(Status.choices),
    "priority": dict(Priority.choices),
    "sla_state": dict(SlaState.choices),
}


def options(choices: Iterable[tuple[Any, str]], selected: Any = None) -> str:
    """<option> elements for (value, label) pairs, every value escaped; `selected` marks the
    one equal to it. Built in Python: a template loop costs ~10 µs an option."""
    return "".join(
        f'<option value="{e(str(v))}"{" selected" if v == selected else ""}>{e(str(label))}</option>'
        for v, label in choices
    )


def view_tabs(views: Iterable[tuple[str, str]], current: str) -> str:
    """The inbox's view links, the current one marked for assistive technology."""
    mark = ' aria-current="page"'
    return "".join(
        f'<a href="?view={e(key)}"{mark if key == current else ""}>{e(label)}</a>' for key, label in views
    )


def _name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def _badge_cells(kind: str, labels: dict[str, str]) -> dict[str, str]:
    return {v: f'<td><span class="badge {kind}-{e(v)}">{e(label)}</span></td>' for v, label in labels.items()}


# The cells that only depend on one column's value, escaped once at import.
_STATUS_CELLS = _badge_cells("status", _LABELS["status"])
_PRIORITY_CELLS = _badge_cells("priority", _LABELS["priority"])
_SLA_CELLS = {
    v: (f'<span class="badge sla-{e(v)}">{e(label)}</span>' if v in (SlaState.AT_RISK, SlaState.BREACHED)
        else f'<span class="muted">{e(label)}</span>')
    for v, label in _LABELS["sla_state"].items()
}  # fmt: skip


def _cell(cells: dict[str, str], kind: str, labels: dict[str, str], value: str) -> str:
    found = cells.get(value)
    if found is None:  # a value outside the choices: shown as it is, escaped
        found = f'<td><span class="badge {kind}-{e(value)}">{e(labels.get(value, value))}</span></td>'
    return found


@register.simple_tag
def inbox_rows(rows: Iterable[Any], can_write: bool) -> SafeString:
    """The inbox table's rows from selectors.inbox_rows (or inbox_list). Built in Python rather
    than with template tags: fifty rows of a dozen variables and filters each were most of the
    page's CPU time. Every value goes through `e` (html.escape, which is what Django's escape
    filter does); the markup is the one the template had. Names are shown as str() shows a
    Person (Person.full_name) and a User (full name, else username)."""
    out: list[str] = []
    status_labels, priority_labels, sla_labels = _LABELS["status"], _LABELS["priority"], _LABELS["sla_state"]
    tz = timezone.get_current_timezone()  # once, not per row (localtime looks it up each time)
    names: dict[tuple[Any, ...], str] = {}  # the same agents recur on every row
    for c in rows:
        subject = c.subject or ""
        shown_subject = subject or "(no subject)"
        if len(shown_subject) > 90:  # truncatechars:90 leaves shorter text as it is
            shown_subject = Truncator(shown_subject).chars(90)
        local = (
            c.last_message_at.astimezone(tz) if c.last_message_at.tzinfo is not None else c.last_message_at
        )
        shown = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
        sla_cell = _SLA_CELLS.get(c.sla_state)
        if sla_cell is None:
            sla_cell = f'<span class="muted">{e(sla_labels.get(c.sla_state, c.sla_state))}</span>'
        person = (_name(c.person__first_name, c.person__last_name) or "(no name)") if c.person_id else "—"
        key = (c.assignee_id, c.assignee__first_name, c.assignee__last_name, c.assignee__username)
        assignee = names.get(key)
        if assignee is None:
            assignee = names[key] = e(
                (_name(c.assignee__first_name, c.assignee__last_name) or c.assignee__username)
                if c.assignee_id
                else "Unassigned"
            )
        check = (
            f'<td><input type="checkbox" name="ids" value="{c.id}" '
            f'aria-label="Select {e(subject or "conversation")}"></td>'
            if can_write
            else ""
        )
        out.append(
            f'<tr class="sentiment-{e(c.sentiment or "neutral")}">\n    {check}\n'
            f'    <td><a href="/inbox/{c.id}/" dir="auto">{e(shown_subject)}</a></td>\n'
            f'    <td dir="auto">{e(person)}</td>\n'
            f"    {_cell(_STATUS_CELLS, 'status', status_labels, c.status)}\n"
            f"    {_cell(_PRIORITY_CELLS, 'priority', priority_labels, c.priority)}\n"
            f"    <td>{assignee}</td>\n"
            f"    <td>{sla_cell}</td>\n"
            f'    <td class="nowrap"><time datetime="{local.isoformat()}">{shown}</time></td>\n'
            "  </tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value escaped above
