"""Deals, pipelines and stages, products, and the orders of an organisation.

Amounts are decimals serialised as strings ("12500.00") so no client loses cents to floats."""

from decimal import Decimal
from typing import Annotated, Any

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.http import Http404
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import Field

from rapport.accounts.models import Role
from rapport.api.common import delete_record, patch_fields, selector_page
from rapport.api.pagination import PageParams, fetch_page, page_out, page_schema
from rapport.api.schemas import (
    Chars,
    DealCreate,
    DealMove,
    DealOut,
    DealPatch,
    Id,
    OrderIn,
    OrderOut,
    ParticipantIn,
    ParticipantOut,
    PipelineIn,
    PipelineOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    StageIn,
    StageOut,
    access_kwargs,
    access_out,
    expected_version,
    lookup,
    ref,
    require_writer,
    visible_ids,
)
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.access import get_editable, get_visible
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.core.pagination import keyset_page
from rapport.people.models import Organisation, Person
from rapport.people.selectors import organisations_visible, people_visible
from rapport.sales import actions
from rapport.sales.models import Deal, DealParticipant, Order, Pipeline, Product, Stage
from rapport.sales.selectors import DealFilters, deal_detail, deal_list, deals_visible

router = Router()

DealPage = page_schema("DealPage", DealOut)
ProductPage = page_schema("ProductPage", ProductOut)
OrderPage = page_schema("OrderPage", OrderOut)


def _require_manager(request: ApiRequest) -> Any:
    user = require_writer(request)
    if not (user.is_admin or user.role == Role.MANAGER):
        raise HttpError(403, "Only managers and admins can do this.")
    return user


# ---------------------------------------------------------------- pipelines


def _stage_out(s: Stage) -> dict[str, Any]:
    return {
        "id": s.pk,
        "name": s.name,
        "position": s.position,
        "probability": s.probability,
        "is_won": s.is_won,
        "is_lost": s.is_lost,
    }


def _pipeline_out(p: Pipeline) -> dict[str, Any]:
    return {
        "id": p.pk,
        "name": p.name,
        "is_default": p.is_default,
        "position": p.position,
        "stages": [_stage_out(s) for s in p.stages.all()],
    }


@router.get("/pipelines", response=list[PipelineOut], tags=["Pipelines"])
def list_pipelines(request: ApiRequest) -> list[dict[str, Any]]:
    return [_pipeline_out(p) for p in Pipeline.objects.prefetch_related("stages")]


@router.get("/pipelines/{pipeline_id}", response=PipelineOut, tags=["Pipelines"])
def get_pipeline(request: ApiRequest, pipeline_id: int) -> dict[str, Any]:
    pipeline = Pipeline.objects.prefetch_related("stages").filter(pk=pipeline_id).first()
    if pipeline is None:
        raise Http404("Not found")
    return _pipeline_out(pipeline)


@router.post("/pipelines", response={201: PipelineOut}, tags=["Pipelines"])
def create_pipeline(request: ApiRequest, payload: PipelineIn) -> Status[dict[str, Any]]:
    """Managers and admins only."""
    _require_manager(request)
    names = [s.name.strip() for s in payload.stages]
    if len(set(names)) != len(names) or not all(names):
        raise ActionError(
            "Stage names must be filled in and different.", {"stages": ["Duplicate or empty name."]}
        )
    pipeline = actions.pipeline_create(
        name=payload.name,
        stages=[(s.name.strip(), s.probability, s.is_won, s.is_lost) for s in payload.stages],
        is_default=payload.is_default,
    )
    return Status(201, _pipeline_out(Pipeline.objects.prefetch_related("stages").get(pk=pipeline.pk)))


@router.post("/pipelines/{pipeline_id}/stages", response={201: StageOut}, tags=["Pipelines"])
def add_stage(request: ApiRequest, pipeline_id: int, payload: StageIn) -> Status[dict[str, Any]]:
    """Append a stage at the end of a pipeline. Managers and admins only."""
    user = _require_manager(request)
    name = payload.name.strip()
    if not name:
        raise ActionError("A stage needs a name.", {"name": ["Required."]})
    if payload.is_won and payload.is_lost:
        raise ActionError("A stage cannot be both won and lost.", {"is_lost": ["Choose one."]})
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise Http404("Not found")
        if pipeline.stages.filter(name=name).exists():
            raise ActionError(
                "This pipeline already has a stage with that name.", {"name": ["Already used."]}
            )
        last = pipeline.stages.order_by("-position").first()
        stage = Stage.objects.create(
            pipeline=pipeline,
            name=name,
            position=(last.position + 1) if last else 0,
            probability=payload.probability,
            is_won=payload.is_won,
            is_lost=payload.is_lost,
        )
        audit_record(
            actor=user, obj=pipeline, action=AuditEntry.Action.UPDATE, changes={"stage": [None, name]}
        )
    return Status(201, _stage_out(stage))


# ---------------------------------------------------------------- deals


def _deals_out(user: Any, deals: list[Deal]) -> list[dict[str, Any]]:
    """A page of deals in a fixed number of queries. Participants and organisations the
    caller may not see are left out, so a shared deal does not leak a private contact."""
    prefetch_related_objects(deals, "team", "participants__person")
    orgs = visible_ids(user, Organisation, [d.organisation_id for d in deals])
    people = visible_ids(user, Person, [p.person_id for d in deals for p in d.participants.all()])
    return [
        {
            "id": d.pk,
            "name": d.name,
            "pipeline": {"id": d.pipeline_id, "name": d.pipeline.name},
            "stage": {
                "id": d.stage_id,
                "name": d.stage.name,
                "probability": d.stage.probability,
                "is_won": d.stage.is_won,
                "is_lost": d.stage.is_lost,
            },
            "status": d.status,
            "amount": d.amount,
            "weighted_amount": d.weighted_amount,
            "currency": d.currency,
            "expected_close": d.expected_close,
            "closed_at": d.closed_at,
            "stage_changed_at": d.stage_changed_at,
            "organisation": ref(d.organisation, orgs),
            "description": d.description,
            "lost_reason": d.lost_reason,
            "participants": [
                {"person": {"id": p.person_id, "name": p.person.full_name}, "role": p.role}
                for p in d.participants.all()
                if p.person_id in people
            ],
            **access_out(d),
        }
        for d in deals
    ]


def _deal_out(user: Any, deal_id: int) -> dict[str, Any]:
    return _deals_out(user, [deal_detail(user=user, deal_id=deal_id)])[0]


class DealQuery(Schema):
    q: Annotated[str, Chars(200)] = Field("", description="Prefix of the deal name.")
    status: Annotated[str, Chars(10)] = Field("", description="open, won or lost.")
    pipeline: Id | None = None
    stage: Id | None = None
    owner: Id | None = None
    organisation: Id | None = None
    sort: Annotated[str, Chars(20)] = Field(
        "-created", description="name, created, -created, amount or -amount."
    )


@router.get("/deals", response=DealPage, tags=["Deals"])
def list_deals(request: ApiRequest, filters: Query[DealQuery], page: Query[PageParams]) -> dict[str, Any]:
    return selector_page(deal_list, request.auth, DealFilters(**filters.dict()), page, _deals_out)


@router.post("/deals", response={201: DealOut}, tags=["Deals"])
def create_deal(request: ApiRequest, payload: DealCreate) -> Status[dict[str, Any]]:
    user = require_writer(request)
    with transaction.atomic():
        people = [
            (lookup(people_visible(user), p.person, "participants", "person"), p.role)
            for p in payload.participants
        ]
        deal = actions.deal_create(
            actor=user,
            name=payload.name,
            pipeline=lookup(Pipeline.objects.all(), payload.pipeline, "pipeline", "pipeline"),
            stage=lookup(Stage.objects.select_related("pipeline"), payload.stage, "stage", "stage"),
            amount=payload.amount,
            currency=payload.currency,
            expected_close=payload.expected_close,
            organisation=lookup(
                organisations_visible(user), payload.organisation, "organisation", "organisation"
            ),
            description=payload.description,
            people=people,
            **access_kwargs(payload),
        )
    return Status(201, _deal_out(user, deal.pk))


@router.get("/deals/{deal_id}", response=DealOut, tags=["Deals"])
def get_deal(request: ApiRequest, deal_id: int) -> dict[str, Any]:
    return _deal_out(request.auth, deal_id)


@router.patch("/deals/{deal_id}", response=DealOut, tags=["Deals"])
def update_deal(
    request: ApiRequest, deal_id: int, payload: DealPatch, version: int | None = None
) -> dict[str, Any]:
    """Change some fields; the status follows the stage. Pass `?version=N` (or
    `If-Match: "N"`) for a 409 instead of overwriting a newer save."""
    user = require_writer(request)
    data = patch_fields(payload, nullable={"expected_close", "organisation", "owner", "team", "visibility"})
    with transaction.atomic():
        deal = get_editable(Deal, user, deal_id, deals_visible(user).select_for_update())
        if "pipeline" in data:
            data["pipeline"] = lookup(Pipeline.objects.all(), data["pipeline"], "pipeline", "pipeline")
        if "stage" in data:
            data["stage"] = lookup(Stage.objects.all(), data["stage"], "stage", "stage")
        if "organisation" in data:
            data["organisation"] = lookup(
                organisations_visible(user), data["organisation"], "organisation", "organisation"
            )
        actions.deal_update(
            actor=user,
            deal=deal,
            data={**data, **access_kwargs(payload)},
            expected_version=expected_version(request, version),
        )
    return _deal_out(user, deal_id)


@router.post("/deals/{deal_id}/move", response=DealOut, tags=["Deals"])
def move_deal(
    request: ApiRequest, deal_id: int, payload: DealMove, version: int | None = None
) -> dict[str, Any]:
    """Move a deal to another stage (of any pipeline); the status follows the stage. With a
    `version` (in the body, the query or If-Match) a stale move is a 409."""
    user = require_writer(request)
    with transaction.atomic():
        deal = get_editable(Deal, user, deal_id, deals_visible(user).select_for_update())
        stage = lookup(Stage.objects.select_related("pipeline"), payload.stage, "stage", "stage")
        actions.deal_move(
            actor=user,
            deal=deal,
            stage=stage,
            expected_version=payload.version or expected_version(request, version),
        )
    return _deal_out(user, deal_id)


@router.delete("/deals/{deal_id}", response={204: None}, tags=["Deals"])
def delete_deal(request: ApiRequest, deal_id: int) -> Status[None]:
    return delete_record(
        request, Deal, deal_id, deals_visible, lambda user, deal: actions.deal_delete(actor=user, deal=deal)
    )


@router.post("/deals/{deal_id}/participants", response={201: ParticipantOut}, tags=["Deals"])
def add_participant(request: ApiRequest, deal_id: int, payload: ParticipantIn) -> Status[dict[str, Any]]:
    """Add a person to a deal, or change their role on it."""
    user = require_writer(request)
    with transaction.atomic():
        deal = get_editable(Deal, user, deal_id, deals_visible(user))
        person = lookup(people_visible(user), payload.person, "person", "person")
        participant = actions.deal_participant_add(actor=user, deal=deal, person=person, role=payload.role)
    return Status(201, {"person": {"id": person.pk, "name": person.full_name}, "role": participant.role})


@router.delete("/deals/{deal_id}/participants/{person_id}", response={204: None}, tags=["Deals"])
def remove_participant(request: ApiRequest, deal_id: int, person_id: int) -> Status[None]:
    user = require_writer(request)
    with transaction.atomic():
        deal = get_editable(Deal, user, deal_id, deals_visible(user))
        participant = (
            DealParticipant.objects.filter(deal=deal, person_id=person_id).select_related("person").first()
        )
        if participant is None:
            raise Http404("Not found")
        participant.deal = deal
        actions.deal_participant_remove(actor=user, participant=participant)
    return Status(204, None)


# ---------------------------------------------------------------- products and orders


def _product_out(p: Product) -> dict[str, Any]:
    return {
        "id": p.pk,
        "name": p.name,
        "sku": p.sku,
        "price": p.price,
        "currency": p.currency,
        "is_subscription": p.is_subscription,
        "active": p.active,
    }


@router.get("/products", response=ProductPage, tags=["Products"])
def list_products(request: ApiRequest, page: Query[PageParams], active: bool | None = None) -> dict[str, Any]:
    qs = Product.objects.all()
    if active is not None:
        qs = qs.filter(active=active)
    result = fetch_page(
        lambda: keyset_page(qs, ["name", "id"], page.cursor, page.limit, with_total=True), page.cursor
    )
    return page_out(result, [_product_out(p) for p in result.items])


@router.get("/products/{product_id}", response=ProductOut, tags=["Products"])
def get_product(request: ApiRequest, product_id: int) -> dict[str, Any]:
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise Http404("Not found")
    return _product_out(product)


@router.post("/products", response={201: ProductOut}, tags=["Products"])
def create_product(request: ApiRequest, payload: ProductIn) -> Status[dict[str, Any]]:
    """Managers and admins only."""
    user = _require_manager(request)
    product = actions.product_create(
        actor=user,
        name=payload.name,
        sku=payload.sku,
        price=payload.price,
        currency=payload.currency,
        is_subscription=payload.is_subscription,
    )
    return Status(201, _product_out(product))


@router.patch("/products/{product_id}", response=ProductOut, tags=["Products"])
def update_product(request: ApiRequest, product_id: int, payload: ProductPatch) -> dict[str, Any]:
    """Managers and admins only. `active: false` deactivates a product: its orders stay, new
    orders cannot use it. The SKU cannot change."""
    user = _require_manager(request)
    data = patch_fields(payload, nullable=set(), access=())
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(pk=product_id).first()
        if product is None:
            raise Http404("Not found")
        product = actions.product_update(actor=user, product=product, data=data)
    return _product_out(product)


def _orders_out(user: Any, orders: list[Order]) -> list[dict[str, Any]]:
    deals = visible_ids(user, Deal, [o.deal_id for o in orders])
    return [
        {
            "id": o.pk,
            "organisation": o.organisation_id,
            "product": {"id": o.product_id, "name": o.product.name},
            "deal": ref(o.deal, deals),
            "quantity": o.quantity,
            "amount": o.amount,
            "currency": o.currency,
            "started_on": o.started_on,
            "ends_on": o.ends_on,
            "status": o.status,
        }
        for o in orders
    ]


@router.get("/organisations/{org_id}/orders", response=OrderPage, tags=["Organisations"])
def list_orders(request: ApiRequest, org_id: int, page: Query[PageParams]) -> dict[str, Any]:
    user = request.auth
    org = get_visible(Organisation, user, org_id, organisations_visible(user))
    qs = Order.objects.filter(organisation=org).select_related("product", "deal")
    result = fetch_page(
        lambda: keyset_page(qs, ["-started_on", "-id"], page.cursor, page.limit, with_total=True), page.cursor
    )
    return page_out(result, _orders_out(user, result.items))


@router.post("/organisations/{org_id}/orders", response={201: OrderOut}, tags=["Organisations"])
def create_order(request: ApiRequest, org_id: int, payload: OrderIn) -> Status[dict[str, Any]]:
    user = require_writer(request)
    if payload.ends_on and payload.started_on and payload.ends_on < payload.started_on:
        raise ActionError("The order ends before it starts.", {"ends_on": ["After the start date."]})
    with transaction.atomic():
        org = get_editable(Organisation, user, org_id, organisations_visible(user))
        product = lookup(Product.objects.filter(active=True), payload.product, "product", "product")
        if payload.amount is None and product.price * payload.quantity >= Decimal("1e12"):
            raise ActionError("The order total is out of range.", {"quantity": ["Too many for this price."]})
        order = actions.order_create(
            actor=user,
            organisation=org,
            product=product,
            quantity=payload.quantity,
            amount=payload.amount,
            started_on=payload.started_on,
            ends_on=payload.ends_on,
            deal=lookup(deals_visible(user), payload.deal, "deal", "deal"),
        )
    order = Order.objects.select_related("product", "deal").get(pk=order.pk)
    return Status(201, _orders_out(user, [order])[0])
