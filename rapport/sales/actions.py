"""Writes on deals, pipelines, products and orders."""

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.accounts.models import Team, User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.actions import default_team, resolve_access_fields, update_with_version
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.people.models import Organisation, Person
from rapport.sales.models import Deal, DealParticipant, DealStatus, Order, Pipeline, Product, Stage

DEAL_FIELDS = [
    "name",
    "pipeline",
    "stage",
    "status",
    "amount",
    "currency",
    "expected_close",
    "organisation",
    "description",
    "lost_reason",
    "owner",
    "team",
    "visibility",
]

DEFAULT_STAGES = [
    ("Lead", 10, False, False),
    ("Qualified", 25, False, False),
    ("Proposal", 50, False, False),
    ("Negotiation", 75, False, False),
    ("Won", 100, True, False),
    ("Lost", 0, False, True),
]


def pipeline_ensure_default() -> Pipeline:
    pipeline = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.order_by("id").first()
    if pipeline is None:
        pipeline = pipeline_create(name="Sales", stages=DEFAULT_STAGES, is_default=True)
    return pipeline


@transaction.atomic
def pipeline_create(
    *, name: str, stages: list[tuple[str, int, bool, bool]], is_default: bool = False
) -> Pipeline:
    if not name.strip():
        raise ActionError("A pipeline needs a name.", {"name": ["Required."]})
    if Pipeline.objects.filter(name=name.strip()).exists():
        raise ActionError("A pipeline with this name exists.", {"name": ["Already used."]})
    if is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
    pipeline = Pipeline.objects.create(
        name=name.strip(), is_default=is_default, position=Pipeline.objects.count()
    )
    for pos, (stage_name, probability, won, lost) in enumerate(stages):
        if not 0 <= probability <= 100:
            raise ActionError(
                "Probability is between 0 and 100.", {"stages": [f"{stage_name}: {probability}"]}
            )
        Stage.objects.create(
            pipeline=pipeline,
            name=stage_name,
            position=pos,
            probability=probability,
            is_won=won,
            is_lost=lost,
        )
    return pipeline


def _status_for(stage: Stage) -> str:
    return stage.deal_status


def parse_amount(value: Any) -> Decimal:
    try:
        amount = (
            Decimal(str(value).replace(",", "").replace(" ", "")) if value not in (None, "") else Decimal("0")
        )
    except InvalidOperation:
        raise ActionError("The amount is not a number.", {"amount": ["Enter a number like 12500.00."]})
    if amount < 0 or amount >= Decimal("1e12") or not amount.is_finite():
        raise ActionError("The amount is out of range.", {"amount": ["Between 0 and 999,999,999,999."]})
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def deal_create(
    *,
    actor: User,
    name: str,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    amount: Any = 0,
    currency: str = "EUR",
    expected_close: dt.date | None = None,
    organisation: Organisation | None = None,
    description: str = "",
    people: list[tuple[Person, str]] | None = None,
    owner: User | None = None,
    team: Team | None = None,
    visibility: str = Visibility.EVERYONE,
) -> Deal:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    name = (name or "").strip()
    if not name:
        raise ActionError("A deal needs a name.", {"name": ["Required."]})
    if len(name) > 200:
        raise ActionError("The name is too long.", {"name": ["At most 200 characters."]})
    pipeline = pipeline or (stage.pipeline if stage else pipeline_ensure_default())
    stage = stage or pipeline.stages.order_by("position").first()
    if stage is None or stage.pipeline_id != pipeline.pk:
        raise ActionError(
            "That stage is not in this pipeline.", {"stage": ["Choose a stage of the pipeline."]}
        )
    currency = (currency or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ActionError("Currency is a three-letter code.", {"currency": ["Like EUR or USD."]})
    access = resolve_access_fields(actor=actor, owner=owner or actor, team=team, visibility=visibility)
    access.setdefault("team", default_team(actor))
    status = _status_for(stage)
    deal = Deal.objects.create(
        name=name,
        pipeline=pipeline,
        stage=stage,
        status=status,
        amount=parse_amount(amount),
        currency=currency,
        expected_close=expected_close,
        organisation=organisation,
        description=description,
        closed_at=timezone.now() if status != DealStatus.OPEN else None,
        **access,
    )
    for person, role in people or []:
        DealParticipant.objects.get_or_create(deal=deal, person=person, defaults={"role": role[:60]})
    audit_record(actor=actor, obj=deal, action=AuditEntry.Action.CREATE, summary=f"Created deal {name}")
    return deal


@transaction.atomic
def deal_update(
    *, actor: User, deal: Deal, data: dict[str, Any], expected_version: int | None = None
) -> Deal:
    def clean(data: dict[str, Any]) -> None:
        if "name" in data:
            data["name"] = (data["name"] or "").strip()
            if not data["name"]:
                raise ActionError("A deal needs a name.", {"name": ["Required."]})
        if "amount" in data:
            data["amount"] = parse_amount(data["amount"])
        if "currency" in data:
            data["currency"] = (data["currency"] or "").upper()
            if len(data["currency"]) != 3 or not data["currency"].isalpha():
                raise ActionError("Currency is a three-letter code.", {"currency": ["Like EUR or USD."]})
        stage = data.get("stage")
        if "pipeline" in data and stage is None and data["pipeline"].pk != deal.pipeline_id:
            stage = data["stage"] = data["pipeline"].stages.order_by("position").first()
        if stage is not None:
            pipeline = data.get("pipeline") or deal.pipeline
            if stage.pipeline_id != pipeline.pk:
                raise ActionError(
                    "That stage is not in this pipeline.", {"stage": ["Choose a stage of the pipeline."]}
                )
            if stage.pk != deal.stage_id:
                data["status"] = _status_for(stage)
                data["closed_at"] = timezone.now() if data["status"] != DealStatus.OPEN else None
                data["stage_changed_at"] = timezone.now()

    return update_with_version(
        actor=actor,
        record=deal,
        data=data,
        expected_version=expected_version,
        fields=DEAL_FIELDS,
        clean=clean,
    )


def deal_move(*, actor: User, deal: Deal, stage: Stage, expected_version: int | None = None) -> Deal:
    """Drag on the board: change the stage (and so the status) of a deal."""
    return deal_update(
        actor=actor,
        deal=deal,
        data={"stage": stage, "pipeline": stage.pipeline},
        expected_version=expected_version,
    )


@transaction.atomic
def deal_participant_add(*, actor: User, deal: Deal, person: Person, role: str = "") -> DealParticipant:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    participant, _ = DealParticipant.objects.update_or_create(
        deal=deal, person=person, defaults={"role": role[:60]}
    )
    audit_record(
        actor=actor,
        obj=deal,
        action=AuditEntry.Action.UPDATE,
        changes={"participant": [None, f"{person} ({role})"]},
    )
    return participant


@transaction.atomic
def deal_participant_remove(*, actor: User, participant: DealParticipant) -> None:
    """Take a person off a deal; the caller has checked it may change the deal."""
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    role = f" ({participant.role})" if participant.role else ""
    audit_record(
        actor=actor,
        obj=participant.deal,
        action=AuditEntry.Action.UPDATE,
        changes={"participant": [f"{participant.person}{role}", None]},
    )
    participant.delete()


@transaction.atomic
def deal_delete(*, actor: User, deal: Deal) -> None:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    audit_record(actor=actor, obj=deal, action=AuditEntry.Action.DELETE, summary=f"Deleted deal {deal.name}")
    deal.delete()


@transaction.atomic
def product_create(
    *, actor: User, name: str, sku: str, price: Any = 0, currency: str = "EUR", is_subscription: bool = False
) -> Product:
    if not (actor.is_admin or actor.role == "manager"):
        raise ActionError("Only managers and admins manage the product catalogue.")
    if not name.strip() or not sku.strip():
        raise ActionError("A product needs a name and a SKU.", {"name": ["Required."], "sku": ["Required."]})
    if Product.objects.filter(sku=sku.strip()).exists():
        raise ActionError("That SKU is already used.", {"sku": ["Already used."]})
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ActionError("Currency is a three-letter code.", {"currency": ["Like EUR or USD."]})
    product = Product.objects.create(
        name=name.strip()[:200],
        sku=sku.strip()[:60],
        price=parse_amount(price),
        currency=currency,
        is_subscription=is_subscription,
    )
    audit_record(
        actor=actor, obj=product, action=AuditEntry.Action.CREATE, summary=f"Created product {product.name}"
    )
    return product


PRODUCT_FIELDS = ["name", "price", "currency", "is_subscription", "active"]


def _require_catalogue_manager(actor: User) -> None:
    if not actor.can_write or not (actor.is_admin or actor.role == "manager"):
        raise ActionError("Only managers and admins manage the product catalogue.")


@transaction.atomic
def product_update(*, actor: User, product: Product, data: dict[str, Any]) -> Product:
    """Change a product, or deactivate it (`active=False`): a deactivated product keeps its
    orders but can no longer be ordered. The SKU is its identity elsewhere, so it stays."""
    _require_catalogue_manager(actor)
    unknown = set(data) - set(PRODUCT_FIELDS)
    if unknown:
        raise ActionError(f"Unknown fields: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name:
            raise ActionError("A product needs a name.", {"name": ["Required."]})
        if len(name) > 200:
            raise ActionError("The name is too long.", {"name": ["At most 200 characters."]})
        changes["name"] = name
    if "price" in data:
        changes["price"] = parse_amount(data["price"])
    if "currency" in data:
        currency = (data["currency"] or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ActionError("Currency is a three-letter code.", {"currency": ["Like EUR or USD."]})
        changes["currency"] = currency
    for flag in ("is_subscription", "active"):
        if flag in data:
            changes[flag] = bool(data[flag])
    diff = {
        name: [str(getattr(product, name)), str(value)]
        for name, value in changes.items()
        if getattr(product, name) != value
    }
    if not diff:
        return product
    for name, value in changes.items():
        setattr(product, name, value)
    product.save(update_fields=list(changes))
    audit_record(actor=actor, obj=product, action=AuditEntry.Action.UPDATE, changes=diff)
    return product


@transaction.atomic
def order_create(
    *,
    actor: User,
    organisation: Organisation,
    product: Product,
    quantity: int = 1,
    amount: Any = None,
    started_on: dt.date | None = None,
    ends_on: dt.date | None = None,
    deal: Deal | None = None,
) -> Order:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    if quantity < 1:
        raise ActionError("Quantity is at least 1.", {"quantity": ["At least 1."]})
    total = parse_amount(amount) if amount not in (None, "") else product.price * quantity
    order = Order.objects.create(
        organisation=organisation,
        product=product,
        quantity=quantity,
        amount=total,
        currency=product.currency,
        started_on=started_on or timezone.localdate(),
        ends_on=ends_on,
        deal=deal,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        obj=organisation,
        action=AuditEntry.Action.UPDATE,
        changes={"order": [None, f"{quantity} × {product}"]},
    )
    return order
