"""Form helpers the web screens share: record pickers, who-may-see fields, putting an action's
errors back on a form, and the optimistic-concurrency conflict view of an edit form.

Forms only parse and check shapes; every rule about the domain stays in the actions."""

import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from rapport.accounts.models import Role, Team, User
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.core.text import fold
from rapport.people.models import IdentityKind, Organisation, Person
from rapport.people.selectors import organisations_visible, people_visible

T = TypeVar("T")

_LOOKUP_ID = re.compile(r"(?:^#?|\(#)(\d{1,18})\)?\s*$")


def lookup_label(obj: Any) -> str:
    """How a picked record is written in a lookup text field; `lookup_id` reads it back."""
    return f"{obj} (#{obj.pk})" if obj is not None else ""


def lookup_id(text: str) -> int | None:
    m = _LOOKUP_ID.search(text.strip())
    return int(m.group(1)) if m else None


def resolve_organisation(user: User, text: str) -> Organisation | None:
    """The visible organisation a picker field names: "Acme (#42)", "#42", "42" or an exact
    name. A select box is not an option with a million organisations."""
    text = (text or "").strip()
    if not text:
        return None
    qs = organisations_visible(user)
    pk = lookup_id(text)
    if pk is not None:
        org = qs.filter(pk=pk).first()
        if org is None:
            raise ValidationError("No organisation with that number that you can see.")
        return org
    matches = list(qs.filter(name_key=fold(text)[:200]).order_by("id")[:2])
    if not matches:
        raise ValidationError(
            f"No organisation called “{text[:80]}”. Create it first, or pick one from the list."
        )
    if len(matches) > 1:
        raise ValidationError(
            f"Several organisations are called “{text[:80]}”; pick one from the list (it adds the #number)."
        )
    return matches[0]


def resolve_person(user: User, text: str) -> Person | None:
    """Like `resolve_organisation`, for people: "Ann Lee (#7)", "#7" or an exact email."""
    text = (text or "").strip()
    if not text:
        return None
    qs = people_visible(user)
    pk = lookup_id(text)
    if pk is not None:
        person = qs.filter(pk=pk).first()
        if person is None:
            raise ValidationError("No person with that number that you can see.")
        return person
    if "@" in text:
        person = qs.filter(identities__kind=IdentityKind.EMAIL, identities__value=text.lower()).first()
        if person is not None:
            return person
    matches = list(qs.filter(name_key=fold(text)[:201]).order_by("id")[:2])
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValidationError(f"Several people are called “{text[:80]}”; pick one from the list.")
    raise ValidationError(f"Nobody called “{text[:80]}” that you can see; pick one from the list.")


def apply_action_error(form: forms.Form, exc: ActionError) -> None:
    """Put an action's errors next to the fields they concern, and its summary on top."""
    if exc.message not in form.non_field_errors():
        form.add_error(None, exc.message)
    for name, msgs in exc.field_errors.items():
        target = name if name in form.fields else None
        for msg in msgs:
            form.add_error(target, msg if target else f"{name.replace('_', ' ')}: {msg}")


def act_on_form(form: forms.Form, act: Callable[[], T]) -> T | None:
    """What `act()` returns when the form is valid and the action accepts it; otherwise None,
    with the action's refusal put on the form next to its fields."""
    if not form.is_valid():
        return None
    try:
        return act()
    except ActionError as exc:
        apply_action_error(form, exc)
        return None


def form_errors_text(form: forms.Form) -> str:
    """A form's errors in one line, each after its field's label, for a message."""
    return "; ".join(
        (str(e) if name == "__all__" else f"{form.fields[name].label or name}: {e}")
        for name, errs in form.errors.items()
        for e in errs
    )


def action_error_text(exc: ActionError) -> str:
    """An action's refusal in one line, its field errors after the summary, for a message."""
    details = [f"{name.replace('_', ' ')}: {m}" for name, msgs in exc.field_errors.items() for m in msgs]
    return " ".join([exc.message, *details]) if details else exc.message


def safe_next(request: HttpRequest, fallback: str) -> str:
    """A `next` URL only when it stays on this site (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


class AccessForm(forms.Form):
    """Who may see a record. Only the fields the user may set are offered (the actions check
    again: the form is a convenience, not the guard)."""

    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.EVERYONE)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="(unchanged)")

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user
        cast(forms.ModelChoiceField, self.fields["team"]).queryset = (
            Team.objects.all() if user.is_admin else user.teams.all()
        )
        if user.is_admin or user.role == Role.MANAGER:
            self.fields["owner"] = forms.ModelChoiceField(
                queryset=User.objects.filter(is_active=True).order_by("username"),
                required=False,
                empty_label="(me / unchanged)",
            )

    def access_data(self) -> dict[str, Any]:
        data = {"visibility": self.cleaned_data["visibility"]}
        if self.cleaned_data.get("team") is not None:
            data["team"] = self.cleaned_data["team"]
        if self.cleaned_data.get("owner") is not None:
            data["owner"] = self.cleaned_data["owner"]
        return data

    @staticmethod
    def access_initial(record: Any) -> dict[str, Any]:
        return {"visibility": record.visibility, "team": record.team_id, "owner": record.owner_id}


class VersionMixin(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


def conflict_rows(form: Any, current_initial: dict[str, Any]) -> list[dict[str, str]]:
    """Field by field: what is saved now versus what this user typed, where they differ."""
    rows = []
    for name, field in form.fields.items():
        if name == "version":
            continue
        theirs = current_initial.get(name, "")
        mine = form.data.get(name, "")
        if isinstance(field, forms.BooleanField):
            mine, theirs = ("yes" if mine else "no"), ("yes" if theirs else "no")
        theirs_s = "" if theirs is None else str(theirs)
        if theirs_s != str(mine or ""):
            rows.append(
                {
                    "label": field.label or name.replace("_", " ").capitalize(),
                    "theirs": theirs_s,
                    "mine": mine,
                }
            )
    return rows


def rebound_with_version(form_class: type, request: HttpRequest, version: int, **kwargs: Any) -> Any:
    """The user's own input again, now carrying the current version so a deliberate second
    save replaces the other person's values instead of failing again."""
    data = request.POST.copy()
    data["version"] = str(version)
    form = form_class(data, **kwargs)
    form.is_valid()
    return form
