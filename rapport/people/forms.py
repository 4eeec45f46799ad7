"""Forms for people and organisations, and the small form helpers the other web screens share.

Forms only parse and check shapes (lengths, numbers, dates, which record a picker names);
every rule about the domain stays in the actions, whose `ActionError.field_errors` are put
back on the form so the user sees them next to the field they typed."""

import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from rapport.accounts.models import Role, Team, User
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.core.text import fold
from rapport.people.models import IdentityKind, Organisation, Person, RelationshipKind
from rapport.people.selectors import organisations_visible, people_visible

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


def safe_next(request: HttpRequest, fallback: str) -> str:
    """A `next` URL only when it stays on this site (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


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


class PersonForm(AccessForm):
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    title = forms.CharField(max_length=150, required=False)
    organisation = forms.CharField(
        max_length=300,
        required=False,
        help_text="Start typing a name and pick one from the list.",
        widget=forms.TextInput(
            attrs={"list": "org-options", "data-lookup": "/organisations/lookup/", "autocomplete": "off"}
        ),
    )
    language = forms.CharField(max_length=10, required=False, help_text="e.g. en, fr, ar")
    is_vip = forms.BooleanField(required=False, label="VIP")
    tags = forms.CharField(max_length=2000, required=False, help_text="Comma-separated.")
    bio = forms.CharField(max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 4}))

    field_order = ["first_name", "last_name", "title", "organisation", "language", "is_vip", "tags", "bio"]

    def clean_organisation(self) -> Organisation | None:
        return resolve_organisation(self.user, self.cleaned_data.get("organisation", ""))

    def person_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "title": c["title"],
            "organisation": c["organisation"],
            "language": c["language"],
            "is_vip": c["is_vip"],
            "bio": c["bio"],
            **self.access_data(),
        }

    @classmethod
    def initial_for(cls, person: Person) -> dict[str, Any]:
        return {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "title": person.title,
            "organisation": lookup_label(person.organisation),
            "language": person.language,
            "is_vip": person.is_vip,
            "tags": ", ".join(t.name for t in person.tags.all()),
            "bio": person.bio,
            "version": person.version,
            **cls.access_initial(person),
        }


class PersonEditForm(PersonForm, VersionMixin):
    pass


class OrganisationForm(AccessForm):
    name = forms.CharField(max_length=200)
    domains = forms.CharField(max_length=2000, required=False, help_text="Comma-separated, e.g. acme.com")
    industry = forms.CharField(max_length=100, required=False)
    employees = forms.IntegerField(required=False, min_value=0, max_value=10_000_000)
    website = forms.CharField(max_length=300, required=False)
    phone = forms.CharField(max_length=40, required=False)
    parent = forms.CharField(
        max_length=300,
        required=False,
        label="Parent organisation",
        widget=forms.TextInput(
            attrs={"list": "org-options", "data-lookup": "/organisations/lookup/", "autocomplete": "off"}
        ),
    )
    tags = forms.CharField(max_length=2000, required=False, help_text="Comma-separated.")
    description = forms.CharField(max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 4}))

    field_order = [
        "name",
        "domains",
        "industry",
        "employees",
        "website",
        "phone",
        "parent",
        "tags",
        "description",
    ]

    def clean_parent(self) -> Organisation | None:
        return resolve_organisation(self.user, self.cleaned_data.get("parent", ""))

    def org_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {
            "name": c["name"],
            "industry": c["industry"],
            "employees": c["employees"],
            "website": c["website"],
            "phone": c["phone"],
            "description": c["description"],
            "parent": c["parent"],
            **self.access_data(),
        }

    @classmethod
    def initial_for(cls, org: Organisation) -> dict[str, Any]:
        return {
            "name": org.name,
            "domains": ", ".join(d.domain for d in org.domains.all()),
            "industry": org.industry,
            "employees": org.employees,
            "website": org.website,
            "phone": org.phone,
            "parent": lookup_label(org.parent),
            "tags": ", ".join(t.name for t in org.tags.all()),
            "description": org.description,
            "version": org.version,
            **cls.access_initial(org),
        }


class OrganisationEditForm(OrganisationForm, VersionMixin):
    pass


class IdentityForm(forms.Form):
    kind = forms.ChoiceField(choices=IdentityKind.choices)
    value = forms.CharField(max_length=320)
    label = forms.CharField(max_length=30, required=False)


class RelationshipForm(forms.Form):
    kind = forms.ChoiceField(choices=RelationshipKind.choices)
    other = forms.CharField(
        max_length=300,
        label="Other person",
        widget=forms.TextInput(
            attrs={"list": "person-options", "data-lookup": "/people/lookup/", "autocomplete": "off"}
        ),
    )
    strength = forms.IntegerField(min_value=0, max_value=100, initial=50)

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_other(self) -> Person | None:
        return resolve_person(self.user, self.cleaned_data.get("other", ""))


def identity_pairs(data: Any) -> list[tuple[str, str]]:
    """The repeatable identity rows of the create form: parallel `identity_kind` /
    `identity_value` lists; unknown kinds are rejected rather than guessed."""
    kinds = data.getlist("identity_kind")[:50]
    values = data.getlist("identity_value")[:50]
    pairs = []
    for kind, value in zip(kinds, values, strict=False):
        if not value.strip():
            continue
        if kind not in IdentityKind.values:
            raise ActionError("Unknown identity kind.", {"identities": [f"“{kind[:20]}” is not a kind."]})
        pairs.append((kind, value[:400]))
    return pairs
