"""Forms for deals, orders and pipelines. Shapes only; the rules are in rapport.sales.actions."""

from decimal import Decimal
from typing import Any

from django import forms

from rapport.sales.models import Deal, Pipeline, Product, Stage
from rapport.web.forms import AccessForm, VersionMixin, lookup_label, resolve_organisation, resolve_person


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Stage) -> str:
        return f"{obj.pipeline.name} › {obj.name} ({obj.probability} %)"


def _lookup(url: str, options: str) -> forms.TextInput:
    return forms.TextInput(attrs={"list": options, "data-lookup": url, "autocomplete": "off"})


class DealForm(AccessForm):
    name = forms.CharField(max_length=200)
    pipeline = forms.ModelChoiceField(
        queryset=Pipeline.objects.all(), required=False, empty_label="(default)"
    )
    stage = StageChoiceField(
        queryset=Stage.objects.select_related("pipeline").order_by(
            "pipeline__position", "pipeline_id", "position"
        ),
        required=False,
        empty_label="(first stage)",
    )
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False)
    currency = forms.CharField(max_length=3, min_length=3, initial="EUR")
    expected_close = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    organisation = forms.CharField(
        max_length=300, required=False, widget=_lookup("/organisations/lookup/", "org-options")
    )
    description = forms.CharField(max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 4}))

    field_order = ["name", "pipeline", "stage", "amount", "currency", "expected_close", "organisation"]

    def clean_organisation(self) -> Any:
        return resolve_organisation(self.user, self.cleaned_data.get("organisation", ""))

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"].strip().upper()
        if not value.isalpha():
            raise forms.ValidationError("A three-letter code like EUR or USD.")
        return value

    def deal_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        data = {
            "name": c["name"],
            "amount": c["amount"] if c["amount"] is not None else Decimal("0"),
            "currency": c["currency"],
            "expected_close": c["expected_close"],
            "organisation": c["organisation"],
            "description": c["description"],
            **self.access_data(),
        }
        if c.get("pipeline") is not None:
            data["pipeline"] = c["pipeline"]
        if c.get("stage") is not None:
            data["stage"] = c["stage"]
        return data

    @classmethod
    def initial_for(cls, deal: Deal) -> dict[str, Any]:
        return {
            "name": deal.name,
            "pipeline": deal.pipeline_id,
            "stage": deal.stage_id,
            "amount": deal.amount,
            "currency": deal.currency,
            "expected_close": deal.expected_close,
            "organisation": lookup_label(deal.organisation),
            "description": deal.description,
            "version": deal.version,
            **cls.access_initial(deal),
        }


class DealCreateForm(DealForm):
    person = forms.CharField(
        max_length=300,
        required=False,
        label="Contact person",
        widget=_lookup("/people/lookup/", "person-options"),
    )
    role = forms.CharField(max_length=60, required=False, help_text="Decision maker, champion, user…")

    def clean_person(self) -> Any:
        return resolve_person(self.user, self.cleaned_data.get("person", ""))


class DealEditForm(DealForm, VersionMixin):
    pass


class ParticipantForm(forms.Form):
    person = forms.CharField(max_length=300, widget=_lookup("/people/lookup/", "person-options"))
    role = forms.CharField(max_length=60, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_person(self) -> Any:
        return resolve_person(self.user, self.cleaned_data.get("person", ""))


class ProductForm(forms.Form):
    name = forms.CharField(max_length=200)
    sku = forms.CharField(max_length=60, label="SKU", help_text="Your article number; cannot change later.")
    price = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"), initial=Decimal("0"))
    currency = forms.CharField(max_length=3, min_length=3, initial="EUR")
    is_subscription = forms.BooleanField(required=False, label="Subscription")


class MoveForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=Stage.objects.select_related("pipeline"))
    version = forms.IntegerField(required=False, min_value=1)


class OrderForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.filter(active=True).order_by("name"))
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000, initial=1)
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        required=False,
        help_text="Empty: price × qty.",
    )
    started_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("started_on") and data.get("ends_on") and data["ends_on"] < data["started_on"]:
            self.add_error("ends_on", "Ends before it starts.")
        return data


class PipelineForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_default = forms.BooleanField(required=False, label="Default pipeline")
    stages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 7}),
        max_length=5000,
        help_text="One stage per line: name, probability % and optionally “won” or “lost”. "
        "E.g. “Proposal, 50” or “Won, 100, won”.",
        initial="Lead, 10\nQualified, 25\nProposal, 50\nNegotiation, 75\nWon, 100, won\nLost, 0, lost",
    )

    def clean_stages(self) -> list[tuple[str, int, bool, bool]]:
        stages, errors, names = [], [], set()
        for number, line in enumerate(self.cleaned_data["stages"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            name = parts[0][:100]
            try:
                probability = int(parts[1]) if len(parts) > 1 and parts[1] else 0
            except ValueError:
                errors.append(f"Line {number}: “{parts[1][:20]}” is not a whole number.")
                continue
            if not 0 <= probability <= 100:
                errors.append(f"Line {number}: the probability is between 0 and 100.")
                continue
            flag = parts[2].lower() if len(parts) > 2 else ""
            if flag not in ("", "won", "lost"):
                errors.append(f"Line {number}: the third value is “won”, “lost” or nothing.")
                continue
            if not name or name.lower() in names:
                errors.append(f"Line {number}: each stage needs its own name.")
                continue
            names.add(name.lower())
            stages.append((name, probability, flag == "won", flag == "lost"))
        if errors:
            raise forms.ValidationError(errors)
        if len(stages) < 2:
            raise forms.ValidationError("A pipeline needs at least two stages.")
        if len(stages) > 30:
            raise forms.ValidationError("At most 30 stages.")
        return stages
