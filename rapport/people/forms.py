"""Forms for people and organisations.

Forms only parse and check shapes (lengths, numbers, dates, which record a picker names);
every rule about the domain stays in the actions, whose `ActionError.field_errors` are put
back on the form so the user sees them next to the field they typed."""

from typing import Any

from django import forms

from rapport.accounts.models import User
from rapport.core.errors import ActionError
from rapport.people.models import IdentityKind, Organisation, Person, RelationshipKind
from rapport.web.forms import AccessForm, VersionMixin, lookup_label, resolve_organisation, resolve_person


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def custom_text(value: Any) -> str:
    """How a custom value is shown in a text box (imports may store numbers and booleans)."""
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


# Rows read from one post: generous above the action's 50-field limit so the user gets its
# clear message, bounded so a hostile post cannot make the form loop over a million rows.
CUSTOM_ROWS_READ = 200


class CustomFieldsMixin(forms.Form):
    """Repeatable `custom_key` / `custom_value` rows for the record's `custom` dict. The rules
    (lengths, how many) are the action's; this only pairs the rows up. A value left as it was
    keeps its stored type, so editing one field does not turn imported numbers into text."""

    custom = forms.Field(required=False, label="Custom fields")

    def __init__(self, *args: Any, custom_initial: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.custom_initial = custom_initial if isinstance(custom_initial, dict) else {}

    def clean_custom(self) -> dict[str, Any]:
        keys = self.data.getlist("custom_key")[:CUSTOM_ROWS_READ] if hasattr(self.data, "getlist") else []
        values = self.data.getlist("custom_value")[:CUSTOM_ROWS_READ] if hasattr(self.data, "getlist") else []
        result: dict[str, Any] = {}
        errors = []
        for key, value in zip(keys, values, strict=False):
            key = key.strip()
            if not key:
                if value.strip():
                    errors.append("A value needs a name.")
                continue
            if key in result:
                errors.append(f"“{key[:40]}” is used twice.")
                continue
            old = self.custom_initial.get(key, "")
            result[key] = old if key in self.custom_initial and custom_text(old) == value else value
        if errors:
            raise forms.ValidationError(list(dict.fromkeys(errors)))
        return result

    def custom_rows(self) -> list[dict[str, str]]:
        """The rows to render: what was posted, else what is stored; plus two empty ones."""
        if self.is_bound and hasattr(self.data, "getlist"):
            pairs = zip(
                self.data.getlist("custom_key")[:CUSTOM_ROWS_READ],
                self.data.getlist("custom_value")[:CUSTOM_ROWS_READ],
                strict=False,
            )
            rows = [{"key": k, "value": v} for k, v in pairs if k.strip() or v.strip()]
        else:
            rows = [{"key": str(k), "value": custom_text(v)} for k, v in self.custom_initial.items()]
        return rows + [{"key": "", "value": ""} for _ in range(2)]


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

    def custom_data(self) -> dict[str, Any]:
        """Only on edit forms (the create form has no custom rows)."""
        return {"custom": self.cleaned_data["custom"]} if "custom" in self.cleaned_data else {}

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


class PersonEditForm(PersonForm, CustomFieldsMixin, VersionMixin):
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

    def custom_data(self) -> dict[str, Any]:
        return {"custom": self.cleaned_data["custom"]} if "custom" in self.cleaned_data else {}

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


class OrganisationEditForm(OrganisationForm, CustomFieldsMixin, VersionMixin):
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


class EmploymentForm(forms.Form):
    organisation = forms.CharField(
        max_length=300,
        widget=forms.TextInput(
            attrs={"list": "org-options", "data-lookup": "/organisations/lookup/", "autocomplete": "off"}
        ),
    )
    title = forms.CharField(max_length=150, required=False)
    started_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ended_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Empty: works there now."
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_organisation(self) -> Organisation | None:
        return resolve_organisation(self.user, self.cleaned_data.get("organisation", ""))


class EmploymentEndForm(forms.Form):
    ended_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class AddressForm(forms.Form):
    label = forms.CharField(max_length=30, required=False, initial="work")
    street = forms.CharField(max_length=200, required=False)
    city = forms.CharField(max_length=100, required=False)
    region = forms.CharField(max_length=100, required=False)
    postcode = forms.CharField(max_length=20, required=False)
    country = forms.CharField(max_length=60, required=False)


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
