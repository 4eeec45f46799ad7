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


def _name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


@register.simple_tag
def inbox_rows(rows: Iterable[Any], can_write: bool) -> SafeString:
    """The inbox table's rows from selectors.inbox_list. Built in Python rather than with
    template tags: fifty rows of a dozen variables and filters each were most of the page's
    CPU time. Every value goes through `e` (html.escape, which is what Django's escape filter
    does); the markup is the one the template had. Names are shown as str() shows a Person
    (Person.full_name) and a User (full name, else username)."""
    out: list[str] = []
    status_labels, priority_labels, sla_labels = _LABELS["status"], _LABELS["priority"], _LABELS["sla_state"]
    for c in rows:
        subject = c.subject or ""
        shown_subject = subject or "(no subject)"
        if len(shown_subject) > 90:  # truncatechars:90 leaves shorter text as it is
            shown_subject = Truncator(shown_subject).chars(90)
        iso, shown = _minute(c.last_message_at)
        sla = e(sla_labels.get(c.sla_state, c.sla_state))
        if c.sla_state in (SlaState.AT_RISK, SlaState.BREACHED):
            sla_cell = f'<span class="badge sla-{e(c.sla_state)}">{sla}</span>'
        else:
            sla_cell = f'<span class="muted">{sla}</span>'
        person = (_name(c.person__first_name, c.person__last_name) or "(no name)") if c.person_id else "—"
        assignee = (
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
            f'    <td><span class="badge status-{e(c.status)}">{e(status_labels.get(c.status, c.status))}</span></td>\n'
            f'    <td><span class="badge priority-{e(c.priority)}">{e(priority_labels.get(c.priority, c.priority))}</span></td>\n'
            f"    <td>{e(assignee)}</td>\n"
            f"    <td>{sla_cell}</td>\n"
            f'    <td class="nowrap"><time datetime="{iso}">{shown}</time></td>\n'
            "  </tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value escaped above
