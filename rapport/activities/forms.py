"""Forms for logging and editing activities. One form serves every kind; the fields of the
other kinds are hidden in the browser (`data-kinds`) and ignored by the action."""

from typing import Any, cast

from django import forms

from rapport.accounts.models import User
from rapport.activities.models import Activity, ActivityKind, CallDirection, CallOutcome
from rapport.core.models import Visibility
from rapport.sales.models import Deal
from rapport.sales.selectors import deals_visible
from rapport.web.forms import lookup_id, lookup_label, resolve_organisation, resolve_person

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _lookup(url: str, options: str) -> forms.TextInput:
    return forms.TextInput(attrs={"list": options, "data-lookup": url, "autocomplete": "off"})


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(
        choices=ActivityKind.choices, widget=forms.Select(attrs={"data-toggle-kind": ""})
    )
    subject = forms.CharField(max_length=300, required=False)
    body = forms.CharField(max_length=100000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    occurred_at = forms.DateTimeField(required=False, widget=DATETIME, label="When")
    call_direction = forms.ChoiceField(
        choices=[("", "—"), *CallDirection.choices], required=False, label="Direction"
    )
    call_duration_min = forms.IntegerField(
        required=False, min_value=0, max_value=1440, label="Duration (minutes)"
    )
    call_outcome = forms.ChoiceField(
        choices=[("", "—"), *CallOutcome.choices], required=False, label="Outcome"
    )
    ends_at = forms.DateTimeField(required=False, widget=DATETIME, label="Ends")
    location = forms.CharField(max_length=200, required=False)
    due_at = forms.DateTimeField(required=False, widget=DATETIME, label="Due")
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="(me)", label="Assigned to"
    )
    person = forms.CharField(
        max_length=300, required=False, widget=_lookup("/people/lookup/", "person-options")
    )
    organisation = forms.CharField(
        max_length=300, required=False, widget=_lookup("/organisations/lookup/", "org-options")
    )
    deal = forms.CharField(
        max_length=300, required=False, help_text="Deal name with its #number, or #number."
    )
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.EVERYONE)

    def __init__(self, *args: Any, user: User, hide_targets: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user
        self.hide_targets = hide_targets
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = User.objects.filter(
            is_active=True
        ).order_by("username")

    def clean_person(self) -> Any:
        return resolve_person(self.user, self.cleaned_data.get("person", ""))

    def clean_organisation(self) -> Any:
        return resolve_organisation(self.user, self.cleaned_data.get("organisation", ""))

    def clean_deal(self) -> Deal | None:
        text = (self.cleaned_data.get("deal") or "").strip()
        if not text:
            return None
        pk = lookup_id(text)
        deal = deals_visible(self.user).filter(pk=pk).first() if pk else None
        if deal is None:
            raise forms.ValidationError("No deal with that number that you can see.")
        return deal

    def log_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        minutes = c.get("call_duration_min")
        return {
            "kind": c["kind"],
            "subject": c["subject"],
            "body": c["body"],
            "occurred_at": c["occurred_at"],
            "call_direction": c["call_direction"],
            "call_duration_s": minutes * 60 if minutes is not None else None,
            "call_outcome": c["call_outcome"],
            "ends_at": c["ends_at"],
            "location": c["location"],
            "due_at": c["due_at"],
            "assignee": c["assignee"],
            "person": c["person"],
            "organisation": c["organisation"],
            "deal": c["deal"],
            "visibility": c["visibility"],
        }


class ActivityEditForm(forms.Form):
    """What may change after logging (the kind and what it hangs off stay)."""

    subject = forms.CharField(max_length=300, required=False)
    body = forms.CharField(max_length=100000, required=False, widget=forms.Textarea(attrs={"rows": 5}))
    occurred_at = forms.DateTimeField(required=False, widget=DATETIME, label="When")
    call_direction = forms.ChoiceField(
        choices=[("", "—"), *CallDirection.choices], required=False, label="Direction"
    )
    call_duration_min = forms.IntegerField(
        required=False, min_value=0, max_value=1440, label="Duration (minutes)"
    )
    call_outcome = forms.ChoiceField(
        choices=[("", "—"), *CallOutcome.choices], required=False, label="Outcome"
    )
    ends_at = forms.DateTimeField(required=False, widget=DATETIME, label="Ends")
    location = forms.CharField(max_length=200, required=False)
    due_at = forms.DateTimeField(required=False, widget=DATETIME, label="Due")
    assignee = forms.ModelChoiceField(queryset=User.objects.none(), required=False, label="Assigned to")
    visibility = forms.ChoiceField(choices=Visibility.choices)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    KIND_FIELDS = {
        "call_direction": "call",
        "call_duration_min": "call",
        "call_outcome": "call",
        "ends_at": "meeting",
        "location": "meeting",
        "due_at": "task",
        "assignee": "task",
    }

    def __init__(self, *args: Any, activity: Activity, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.activity = activity
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = User.objects.filter(
            is_active=True
        ).order_by("username")
        for name, kind in self.KIND_FIELDS.items():
            if activity.kind != kind:
                del self.fields[name]

    def update_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        if "call_duration_min" in data:
            minutes = data.pop("call_duration_min")
            data["call_duration_s"] = minutes * 60 if minutes is not None else None
        if self.activity.kind == ActivityKind.TASK and data.get("assignee") is None:
            data.pop("assignee", None)
        if data.get("occurred_at") is None:
            data.pop("occurred_at", None)
        return data

    @staticmethod
    def initial_for(activity: Activity) -> dict[str, Any]:
        return {
            "subject": activity.subject,
            "body": activity.body,
            "occurred_at": activity.occurred_at,
            "call_direction": activity.call_direction,
            "call_duration_min": activity.call_duration_s // 60 if activity.call_duration_s else None,
            "call_outcome": activity.call_outcome,
            "ends_at": activity.ends_at,
            "location": activity.location,
            "due_at": activity.due_at,
            "assignee": activity.assignee_id,
            "visibility": activity.visibility,
            "version": activity.version,
        }


def target_initial(user: User, params: Any) -> dict[str, Any]:
    """Prefill person/organisation/deal from `?person=<id>` etc., only with what the user sees."""
    from rapport.people.selectors import organisations_visible, people_visible

    initial: dict[str, Any] = {}
    for name, qs in (
        ("person", people_visible(user)),
        ("organisation", organisations_visible(user)),
        ("deal", deals_visible(user)),
    ):
        pk = lookup_id(params.get(name, "") or "")
        if pk:
            obj = qs.filter(pk=pk).first()
            if obj is not None:
                initial[name] = lookup_label(obj)
    return initial
