import unicodedata
from collections.abc import Container, Iterable
from html import escape as e
from typing import Any
from urllib.parse import quote

from django import template
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.defaultfilters import linebreaksbr
from django.template.loader import get_template
from django.utils import timezone
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from rapport.channels.models import ChannelKind
from rapport.conversations.actions import SENTIMENT_LABELS
from rapport.conversations.models import Delivery, Direction, Priority, SlaState, Status
from rapport.conversations.sanitise import clean_html
from rapport.conversations.templatetags.mentions import with_mentions
from rapport.people.models import IdentityKind

register = template.Library()


@register.filter
def sanitised(html: str) -> SafeString:
    """Stored HTML is clean already; cleaning again at render time (idempotent) means a row
    written by anything other than the pipeline still cannot inject markup."""
    return mark_safe(clean_html(html or ""))  # noqa: S308 - nh3 allow-list output


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
def inbox_rows(rows: Iterable[Any], can_write: bool, visible_people: Container[int]) -> SafeString:
    """The inbox table's rows from selectors.inbox_rows (or inbox_list). Built in Python rather
    than with template tags: fifty rows of a dozen variables and filters each were most of the
    page's CPU time. Every value goes through `e` (html.escape, which is what Django's escape
    filter does); the markup is the one the template had. Names are shown as str() shows a
    Person (Person.full_name) and a User (full name, else username). A customer not among
    `visible_people` is not named (their record is private to someone else); required, so
    no caller can forget it."""
    out: list[str] = []
    status_labels, priority_labels, sla_labels = _LABELS["status"], _LABELS["priority"], _LABELS["sla_state"]
    tz = timezone.get_current_timezone()  # once, not per row (localtime looks it up each time)
    names: dict[tuple[Any, ...], str] = {}  # the same agents recur on every row
    for c in rows:
        subject = c.subject or ""
        safe_subject = e(subject)
        if not subject:
            shown_subject = "(no subject)"
        elif len(subject) > 90:  # truncatechars:90 leaves shorter text as it is
            shown_subject = e(Truncator(subject).chars(90))
        else:
            shown_subject = safe_subject
        local = (
            c.last_message_at.astimezone(tz) if c.last_message_at.tzinfo is not None else c.last_message_at
        )
        shown = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
        sla_cell = _SLA_CELLS.get(c.sla_state)
        if sla_cell is None:
            sla_cell = f'<span class="muted">{e(sla_labels.get(c.sla_state, c.sla_state))}</span>'
        if not c.person_id:
            person = "—"
        elif c.person_id not in visible_people:
            person = "A person you cannot see"
        else:
            person = _name(c.person__first_name, c.person__last_name) or "(no name)"
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
            f'aria-label="Select {safe_subject or "conversation"}"></td>'
            if can_write
            else ""
        )
        sentiment = c.sentiment
        out.append(
            f'<tr class="sentiment-{e(sentiment) if sentiment else "neutral"}">\n    {check}\n'
            f'    <td><a href="/inbox/{c.id}/" dir="auto">{shown_subject}</a></td>\n'
            f'    <td dir="auto">{e(person)}</td>\n'
            f"    {_STATUS_CELLS.get(c.status) or _cell(_STATUS_CELLS, 'status', status_labels, c.status)}\n"
            f"    {_PRIORITY_CELLS.get(c.priority) or _cell(_PRIORITY_CELLS, 'priority', priority_labels, c.priority)}\n"
            f"    <td>{assignee}</td>\n"
            f"    <td>{sla_cell}</td>\n"
            f'    <td class="nowrap"><time datetime="{local.isoformat()}">{shown}</time></td>\n'
            "  </tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value escaped above


# --- the conversation history -----------------------------------------------------------

_DIRECTION_LABELS = dict(Direction.choices)
_DELIVERY_LABELS = dict(Delivery.choices)


def _sentiment_options(current: str) -> str:
    return "".join(
        f'<option value="{e(v)}"{" selected" if v == current else ""}>{e(v)}</option>'
        for v in SENTIMENT_LABELS
    )


def message_items(
    rows: Iterable[Any], *, can_edit: bool, csrf_input: str, request: HttpRequest | None = None
) -> SafeString:
    """The history's <li> items for selectors.message_rows: the markup of _messages.html (which
    stays as the reference the tests compare with), built in Python like the inbox rows, with
    every value escaped. `csrf_input` is the form's hidden token field, made once a page."""
    tz = timezone.get_current_timezone()
    out: list[str] = []
    for m in rows:
        pk, direction = m.id, m.direction
        if direction == "inbound":
            author = m.author_name or m.author_value
        else:
            author = m.author if m.author is not None else "Rapport"
        local = m.received_at.astimezone(tz) if m.received_at.tzinfo is not None else m.received_at
        shown = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
        meta = [f"· {e(_DIRECTION_LABELS.get(direction, direction))}"]
        if m.channel_name is not None:
            meta.append(f" · {e(m.channel_name)}")
        meta.append(f' · <time datetime="{local.isoformat()}">{shown}</time>')
        if direction == "outbound":
            status = m.delivery_status
            meta.append(
                f' · <span class="badge delivery-{e(status)}">{e(_DELIVERY_LABELS.get(status, status))}</span>'
            )
            if m.delivery_error:
                meta.append(f' <span class="muted">{e(m.delivery_error)}</span>')
        if m.sentiment and m.sentiment != "neutral":
            meta.append(f' · <span class="badge sentiment-{e(m.sentiment)}">{e(m.sentiment)}</span>')
        parts = [
            f'<li class="msg-{e(direction)}{" msg-hop" if m.author_kind == "hop" else ""}" id="m{pk}" data-id="{pk}">\n'
            f'  <div class="msg-meta">\n    <strong dir="auto">{e(author)}</strong>\n'
            f'    <span class="muted">{"".join(meta)}</span>\n  </div>\n'
        ]
        if m.subject:
            parts.append(f'  <div class="msg-subject" dir="auto">{e(m.subject)}</div>\n')
        if m.html:
            parts.append(f'  <div class="msg-body msg-html" dir="auto">{sanitised(m.html)}</div>\n')
        elif direction == "note":
            parts.append(f'  <div class="msg-body" dir="auto">{with_mentions(m.text)}</div>\n')
        else:
            parts.append(
                f'  <div class="msg-body" dir="auto">{linebreaksbr(m.text, autoescape=True)}</div>\n'
            )
        if direction == "inbound" and can_edit:
            parts.append(
                f'  <form method="post" action="/inbox/{m.conversation_id}/messages/{pk}/sentiment/" '
                f'class="inline small">{csrf_input}\n'
                f'    <label class="visually-hidden" for="sent-{pk}">Correct the sentiment of this message</label>\n'
                f'    <select id="sent-{pk}" name="label" class="small">{_sentiment_options(m.sentiment)}</select>\n'
                '    <button type="submit" class="btn btn-small" title="Teaches Rapport\'s sentiment model">'
                "Correct sentiment</button>\n  </form>\n"
            )
        if m.attachments:  # rare: the shared include, which reads the stored files
            parts.append(
                get_template("channels/_attachments.html").render({"m": m, "can_edit": can_edit}, request)
            )
        parts.append("</li>")
        out.append("".join(parts))
    return mark_safe("\n".join(out))  # noqa: S308 - every value escaped above


def csrf_input(request: HttpRequest) -> str:
    """The hidden field {% csrf_token %} writes, for forms built in Python."""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{e(get_token(request))}">'


# --- the conversation page's side panels (selectors.conversation_page rows) -------------

_IDENTITY_LABELS = dict(IdentityKind.choices)
_CHANNEL_LABELS = dict(ChannelKind.choices)


def _short(text: str, length: int) -> str:
    """default:"(no subject)"|truncatechars:length. Truncator returns the text in NFC when it
    fits: with no more characters than `length` it fits (combining ones do not count), and
    that is decided here without building a Truncator (a lazy object: ~15 µs, forty a page)."""
    text = unicodedata.normalize("NFC", text or "(no subject)")
    return text if len(text) <= length else Truncator(text).chars(length)


def identity_items(identities: Iterable[Any]) -> SafeString:
    """The customer's identities, phones and emails as links."""
    out = []
    for i in identities:
        value = e(i.value)
        if i.kind == "phone":
            shown = f'<a href="tel:{e(quote(i.value, safe="+"))}">{value}</a>'
        elif i.kind == "email":
            shown = f'<a href="mailto:{e(quote(i.value, safe="@"))}">{value}</a>'
        else:
            shown = value
        out.append(f"<li>{e(_IDENTITY_LABELS.get(i.kind, i.kind))}: {shown}</li>")
    return mark_safe("".join(out))  # noqa: S308 - every value escaped above


def other_conversation_items(others: Iterable[Any]) -> SafeString:
    """The customer's other conversations: subject, status and the kinds of channel used."""
    status_labels = _LABELS["status"]
    return mark_safe(  # noqa: S308 - every value escaped
        "".join(
            f'<li><a href="/inbox/{o.id}/" dir="auto">{e(_short(o.subject, 60))}</a> '
            f'<span class="muted">{e(status_labels.get(o.status, o.status))} · '
            f"{e(', '.join(_CHANNEL_LABELS.get(k, k) for k in o.channel_kinds))}</span></li>"
            for o in others
        )
    )


def merge_options(others: Iterable[Any]) -> str:
    """The "merge into this one" choices: the customer's other conversations not merged yet."""
    return "".join(
        f'<option value="{o.id}">#{o.id} {e(_short(o.subject, 50))}</option>'
        for o in others
        if not o.merged_into_id
    )


def deal_items(deals: Iterable[Any]) -> SafeString:
    """The customer's deals: name, stage, amount as the template shows a Decimal."""
    return mark_safe(  # noqa: S308 - every value escaped
        "".join(
            f'<li><a href="/deals/{d.id}/" dir="auto">{e(d.name)}</a> '
            f'<span class="muted">{e(d.stage_name)} · {e(str(localize(d.amount)))} {e(d.currency)}</span></li>'
            for d in deals
        )
    )
