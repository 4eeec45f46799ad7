"""Web screens for deals: list, detail, forms, the pipeline board (drag to change stage), the
forecast and the pipeline settings."""

import datetime as dt
from decimal import Decimal
from html import escape as _e
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.accounts.models import Role, User
from rapport.core import reads
from rapport.core.access import can_edit, can_see
from rapport.core.errors import ActionError, ConflictError
from rapport.core.http import AuthedRequest, concrete_user, int_param
from rapport.people.selectors import OrgRef, organisation_detail, organisations_visible, people_visible
from rapport.sales import actions
from rapport.sales.forms import (
    DealCreateForm,
    DealEditForm,
    DealForm,
    MoveForm,
    OrderForm,
    ParticipantForm,
    PipelineForm,
    ProductForm,
)
from rapport.sales.models import Deal, DealParticipant, DealStatus, Pipeline, Product, Stage
from rapport.sales.selectors import (
    DEAL_SORTS,
    BoardCard,
    BoardColumn,
    DealFilters,
    DealRow,
    deal_detail,
    deal_rows,
    forecast,
    pipeline_board,
    pipeline_choices,
    stage_cards,
)
from rapport.web.charts import Series, bar_chart
from rapport.web.editing import (
    RecordPages,
    act_on_post,
    delete_page,
    edit_page,
    record_page_context,
    require_editable,
    require_writer,
)
from rapport.web.forms import act_on_form, lookup_label
from rapport.web.listing import list_page, owner_param

# --- deals ------------------------------------------------------------------------------


DEAL_PAGES = RecordPages(
    kind="deal",
    nav="deals",
    name="deal",
    form_template="sales/deal_form.html",
    detail_url="deal-detail",
    list_url="deal-list",
)


@login_required
def deal_list_view(request: AuthedRequest) -> HttpResponse:
    filters = DealFilters(
        q=request.GET.get("q", "")[:200].strip(),
        status=request.GET.get("status", ""),
        pipeline=int_param(request.GET.get("pipeline")),
        stage=int_param(request.GET.get("stage")),
        owner=owner_param(request),
        organisation=int_param(request.GET.get("organisation")),
        sort=request.GET.get("sort", "-created"),
    )
    page, context, status = list_page(
        request,
        lambda cursor: deal_rows(user=request.user, filters=filters, cursor=cursor, limit=50),
        nav="deals",
        filters=filters,
        sorts=DEAL_SORTS,
    )
    user = concrete_user(request)
    context["rows_html"] = mark_safe(  # noqa: S308 — every value is escaped in _deal_row
        "".join(_deal_row(user, d) for d in page.items)
    )
    if filters.organisation:
        context["filter_org"] = organisations_visible(request.user).filter(pk=filters.organisation).first()
    context["statuses"] = DealStatus.choices
    context["pipelines"] = pipeline_choices(with_stages=True)
    return render(request, "sales/deal_list.html", context, status=status)


def _deal_row(user: User, d: DealRow) -> str:
    """One row of the deals list, built in Python with every value escaped, like the people
    list's rows (50 rows through the template engine cost as much as the query)."""
    org = d.organisation
    org_cell = (
        f'<a href="/organisations/{d.organisation_id}/">{_e(org.name)}</a>'
        if org is not None and can_see(user, org)
        else ""
    )
    badge = (
        f' <span class="badge badge-{_e(d.status)}">{_e(STATUS_LABELS.get(d.status, d.status))}</span>'
        if d.status != "open"
        else ""
    )
    close = (
        _e(date_format(d.expected_close)) if d.expected_close is not None else ""
    )  # as the template showed it
    return (
        f'<tr data-deal-id="{d.pk}"><td><a href="/deals/{d.pk}/" dir="auto">{_e(d.name)}</a></td>'
        f"<td>{org_cell}</td><td>{_e(d.stage_name)}{badge}</td>"
        f'<td class="right nowrap">{d.amount:,.2f} {_e(d.currency)}</td>'
        f'<td class="nowrap">{close}</td><td>{_e(d.owner)}</td></tr>'
    )


STATUS_LABELS = dict(DealStatus.choices)


@login_required
def deal_create_view(request: AuthedRequest) -> HttpResponse:
    require_writer(request.user)
    if request.method == "POST":
        form = DealCreateForm(request.POST, user=request.user)

        def create() -> Deal:
            person = form.cleaned_data.get("person")
            return actions.deal_create(
                actor=request.user,
                people=[(person, form.cleaned_data["role"])] if person else None,
                **form.deal_data(),
            )

        deal = act_on_form(form, create)
        if deal is not None:
            messages.success(request, f"Created deal {deal.name}.")
            return redirect("deal-detail", pk=deal.pk)
    else:
        initial: dict[str, Any] = {"currency": "EUR"}
        org_id = int_param(request.GET.get("organisation"))
        person_id = int_param(request.GET.get("person"))
        if person_id:
            person = people_visible(request.user).select_related("organisation").filter(pk=person_id).first()
            if person is not None:
                initial["person"] = lookup_label(person)
                if person.organisation and can_see(request.user, person.organisation):
                    initial["organisation"] = lookup_label(person.organisation)
        if org_id:
            org = organisations_visible(request.user).filter(pk=org_id).first()
            if org is not None:
                initial["organisation"] = lookup_label(org)
        form = DealCreateForm(initial=initial, user=request.user)
    return render(
        request, "sales/deal_form.html", {"nav": "deals", "form": form}, status=400 if form.errors else 200
    )


@login_required
def deal_detail_view(request: AuthedRequest, pk: int) -> HttpResponse:
    user = request.user
    deal = deal_detail(user=user, deal_id=pk)
    participants = [p for p in deal.participants.all() if can_see(user, p.person)]
    shared = record_page_context(request, deal, deal_id=deal.pk)
    context = {
        "nav": "deals",
        "deal": deal,
        **shared,
        "participants": participants,
        "organisation_visible": deal.organisation is not None and can_see(user, deal.organisation),
        "stages": list(deal.pipeline.stages.order_by("position")) if shared["can_edit"] else [],
        "participant_form": ParticipantForm(user=user),
    }
    return render(request, "sales/deal_detail.html", context)


def _deal_for_write(request: AuthedRequest, pk: int) -> Deal:
    deal = deal_detail(user=request.user, deal_id=pk)
    return require_editable(request.user, deal, "You can see this deal but not change it.")


@login_required
def deal_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    def save(form: DealEditForm, deal: Deal, version: int | None) -> None:
        actions.deal_update(actor=request.user, deal=deal, data=form.deal_data(), expected_version=version)

    return edit_page(
        request,
        _deal_for_write(request, pk),
        DEAL_PAGES,
        form_class=DealEditForm,
        form_kwargs=lambda _: {"user": request.user},
        initial_for=DealForm.initial_for,
        save=save,
        reload=lambda: deal_detail(user=request.user, deal_id=pk),
    )


@login_required
def deal_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    deal = _deal_for_write(request, pk)
    return delete_page(
        request,
        deal,
        DEAL_PAGES,
        delete=lambda: actions.deal_delete(actor=request.user, deal=deal),
        done=f"Deleted deal {deal.name}.",
    )


@login_required
@require_POST
def participant_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    deal = _deal_for_write(request, pk)
    act_on_post(
        request,
        ParticipantForm(request.POST, user=request.user),
        lambda data: actions.deal_participant_add(
            actor=request.user, deal=deal, person=data["person"], role=data["role"]
        ),
        "Participant added.",
    )
    return redirect("deal-detail", pk=pk)


@login_required
@require_POST
def participant_remove_view(request: AuthedRequest, pk: int, person_id: int) -> HttpResponse:
    deal = _deal_for_write(request, pk)
    participant = (
        DealParticipant.objects.filter(deal=deal, person_id=person_id).select_related("person").first()
    )
    # The page lists only participants the user can see; a hidden one is not there to remove.
    if participant is None or not can_see(request.user, participant.person):
        raise Http404("Not found")
    participant.deal = deal
    actions.deal_participant_remove(actor=request.user, participant=participant)
    messages.success(request, "Participant removed.")
    return redirect("deal-detail", pk=pk)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_http_methods(["GET", "POST"])
def deal_move_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """The board's drop target, and the move page its "Move…" links open without JavaScript
    (GET: the stage picker). JSON for fetch(), a redirect with a message for a plain form
    post. Nothing changes unless every check passes."""
    as_json = _wants_json(request)
    if request.method == "GET":
        deal = deal_detail(user=request.user, deal_id=pk)
        if not can_edit(request.user, deal):
            raise PermissionDenied("You can see this deal but not move it.")
        stages = reads.instances(Stage, "WHERE pipeline_id = %s ORDER BY position, id", [deal.pipeline_id])
        return render(
            request,
            "sales/deal_move.html",
            {"nav": "pipeline", "deal": deal, "stages": [s for s in stages if s.pk != deal.stage_id]},
        )

    def back(pipeline_id: object) -> str:
        return f"/pipeline/?pipeline={pipeline_id}"

    def fail(message: str, status: int, **extra: Any) -> HttpResponse:
        if as_json:
            return JsonResponse({"ok": False, "detail": message, **extra}, status=status)
        messages.error(request, message)
        return redirect(back(extra.get("pipeline", "")))

    deal = deal_detail(user=request.user, deal_id=pk)  # invisible → 404
    if not can_edit(request.user, deal):
        return fail("You can see this deal but not move it.", 403, pipeline=deal.pipeline_id)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return fail("Choose a stage.", 400, pipeline=deal.pipeline_id)
    stage = form.cleaned_data["stage"]
    try:
        deal = actions.deal_move(
            actor=request.user, deal=deal, stage=stage, expected_version=form.cleaned_data.get("version")
        )
    except ConflictError as exc:
        return fail(
            "Someone else changed this deal meanwhile; the board is reloaded with their change.",
            409,
            version=exc.current_version,
            pipeline=deal.pipeline_id,
        )
    except ActionError as exc:
        return fail(exc.message, 400, pipeline=deal.pipeline_id)
    if as_json:
        return JsonResponse(
            {
                "ok": True,
                "id": deal.pk,
                "stage": stage.pk,
                "status": deal.status,
                "version": deal.version,
                "weighted": str(deal.weighted_amount),
            }
        )
    messages.success(request, f"Moved “{deal.name}” to {stage.name}.")
    return redirect(back(deal.pipeline_id))


# --- pipeline board ---------------------------------------------------------------------


def _pipeline_from(request: HttpRequest, choices: list[Pipeline] | None = None) -> Pipeline | None:
    """The pipeline the request names, else the default one, else the first."""
    options = choices if choices is not None else pipeline_choices()
    pk = int_param(request.GET.get("pipeline"))
    if pk:
        return next((p for p in options if p.pk == pk), None)
    return next((p for p in options if p.is_default), None) or (options[0] if options else None)


class _BoardAccess:
    """Per-request answers to "may this user move / see this?" keyed by the access columns,
    and escaped owner names: 180 cards share a handful of owners, teams and visibilities."""

    def __init__(self, user: User):
        self.user = user
        self.edit: dict[tuple[int, int | None, str], bool] = {}
        self.see: dict[tuple[int, int | None, str], bool] = {}
        self.names: dict[str, str] = {}

    def can_move(self, deal: BoardCard) -> bool:
        key = (deal.owner_id, deal.team_id, deal.visibility)
        if (answer := self.edit.get(key)) is None:
            answer = self.edit[key] = can_edit(self.user, deal)
        return answer

    def can_see(self, org: OrgRef) -> bool:
        key = (org.owner_id, org.team_id, org.visibility)
        if (answer := self.see.get(key)) is None:
            answer = self.see[key] = can_see(self.user, org)
        return answer

    def escaped(self, name: str) -> str:
        if (escaped := self.names.get(name)) is None:
            escaped = self.names[name] = _e(name)
        return escaped


def _card(access: _BoardAccess, deal: BoardCard) -> str:
    """One board card as HTML. Built here rather than in a template loop: the board is the page
    users keep open, and Django's template engine spent ~25 ms on 210 cards (this takes ~2).
    Every value goes through _e (html.escape, what Django's escape does, without its lazy-text
    wrapper); the markup mirrors what board.js expects.

    "Move…" is a link to the deal's move page (works without JavaScript); board.js turns it
    into a stage picker on the card itself. A form with a stage list on every card made the
    board 150 KB at 180 cards, three quarters of it repeated form markup."""
    pk, name = deal.pk, _e(deal.name)
    amount = f"{deal.amount:,.0f}"
    currency = access.escaped(deal.currency)
    can_move = access.can_move(deal)
    drag = ' draggable="true"' if can_move else ""
    org = (
        f'<div class="muted small">{_e(deal.organisation.name)}</div>'
        if deal.organisation is not None and access.can_see(deal.organisation)
        else ""
    )
    move = (
        f' <a class="move-link small" href="/deals/{pk}/move/" aria-label="Move {name} to another stage">Move…</a>'
        if can_move
        else ""
    )
    return (
        f'<article class="card" tabindex="0" data-deal-id="{pk}" data-version="{deal.version}" '
        f'data-amount="{deal.amount}"{drag} '
        f'aria-label="{name}, {amount} {currency}"><a href="/deals/{pk}/" dir="auto">{name}</a>{org}'
        f'<div><span class="amount">{amount} {currency}</span> <span class="muted small">· {access.escaped(deal.owner_name)}</span>{move}</div>'
        "</article>"
    )


def _column(access: _BoardAccess, column: BoardColumn, *, mine: bool) -> str:
    """One board column as HTML, for the same reason as _card: the template loop with its
    number filters cost as much as the queries behind the board."""
    stage = column.stage
    cards = "".join(_card(access, deal) for deal in column.deals)
    more = (
        f'<button type="button" class="btn btn-small more-cards" data-more="{_e(column.more)}">Show more</button>'
        if column.more
        else ""
    ) + (
        f'<a class="small" href="/deals/?stage={stage.pk}&amp;sort=-amount{"&amp;owner=me" if mine else ""}">'
        f"{column.count} in all: see the list »</a>"
        if column.count > len(column.deals)
        else ""
    )
    return (
        f'<section class="column" data-stage-id="{stage.pk}" data-probability="{stage.probability}" '
        f'aria-labelledby="stage-{stage.pk}">'
        f'<h2 id="stage-{stage.pk}"><span>{_e(stage.name)}</span> <span class="muted" data-count>{column.count}</span></h2>'
        f'<div class="sums"><span data-total="{column.total}">{column.total:,.0f}</span> · weighted '
        f"<span data-weighted>{column.weighted:,.0f}</span> ({stage.probability} %)</div>"
        f'<div class="cards" data-cards>{cards}</div>{more}</section>'
    )


@login_required
@require_GET
def stage_cards_view(request: AuthedRequest, stage_id: int) -> JsonResponse:
    """The board's "Show more": the next cards of a column as HTML (the same _card markup),
    and the cursor for the ones after. A stage that does not exist is a 404; a bad cursor a
    400 with the reason; only cards the user may see."""
    stage = next(iter(reads.instances(Stage, "WHERE sales_stage.id = %s", [stage_id])), None)
    if stage is None:
        return JsonResponse({"ok": False, "detail": "No such stage."}, status=404)
    owner_id = request.user.pk if request.GET.get("owner") == "me" else None
    try:
        cards, more = stage_cards(
            user=request.user, stage=stage, cursor=request.GET.get("after", ""), owner_id=owner_id
        )
    except ActionError as exc:
        return JsonResponse({"ok": False, "detail": exc.message}, status=400)
    access = _BoardAccess(concrete_user(request))
    return JsonResponse({"ok": True, "html": "".join(_card(access, card) for card in cards), "more": more})


@login_required
def pipeline_board_view(request: AuthedRequest) -> HttpResponse:
    choices = pipeline_choices()
    pipeline = _pipeline_from(request, choices)
    owner_id = request.user.pk if request.GET.get("owner") == "me" else None
    columns = pipeline_board(user=request.user, pipeline=pipeline, owner_id=owner_id) if pipeline else []
    stages = [c.stage for c in columns]
    get_token(request)  # board.js sends the CSRF cookie's token with each move
    access = _BoardAccess(concrete_user(request))
    board_html = mark_safe(  # noqa: S308 — every value is escaped in _column and _card
        "".join(_column(access, column, mine=owner_id is not None) for column in columns)
    )
    context = {
        "nav": "pipeline",
        "pipeline": pipeline,
        "pipelines": choices,
        "columns": columns,
        "board_html": board_html,
        "stages": stages,
        "mine": owner_id is not None,
        "total": sum((c.total for c in columns if not c.stage.is_lost), Decimal("0")),
        "weighted": sum((c.weighted for c in columns), Decimal("0")),
        "can_manage": request.user.is_admin or request.user.role == Role.MANAGER,
    }
    return render(request, "sales/board.html", context)


# --- forecast ---------------------------------------------------------------------------


@login_required
def forecast_view(request: AuthedRequest) -> HttpResponse:
    months = int_param(request.GET.get("months")) or 6
    months = max(1, min(months, 24))
    pipelines = list(Pipeline.objects.all())
    pipeline = None
    pipeline_id = int_param(request.GET.get("pipeline"))
    if pipeline_id:
        pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    today = timezone.localdate()
    result = forecast(
        user=request.user, start=dt.date(today.year, today.month, 1), months=months, pipeline=pipeline
    )
    labels = [m.strftime("%b %Y") for m in result.months]
    rows = [
        {
            "owner": o["owner"],
            "cells": [o["by_month"].get(m, Decimal("0")) for m in result.months],
            "total": o["total"],
        }
        for o in result.owners
    ]
    chart = bar_chart(
        labels=labels,
        series=[
            Series("Weighted", [result.totals_by_month.get(m, 0) for m in result.months], "bar"),
            Series("Unweighted", [result.unweighted_by_month.get(m, 0) for m in result.months], "bar-alt"),
            Series("Won", [result.won_by_month.get(m, 0) for m in result.months], "bar-won"),
        ],
        title=f"Forecast for the next {months} months: weighted, unweighted and won per month",
    )
    context = {
        "nav": "forecast",
        "forecast": result,
        "labels": labels,
        "rows": rows,
        "totals": [result.totals_by_month.get(m, Decimal("0")) for m in result.months],
        "unweighted": [result.unweighted_by_month.get(m, Decimal("0")) for m in result.months],
        "won": [result.won_by_month.get(m, Decimal("0")) for m in result.months],
        "chart": chart,
        "months": months,
        "month_choices": [3, 6, 12],
        "pipelines": pipelines,
        "pipeline": pipeline,
    }
    return render(request, "sales/forecast.html", context)


# --- pipeline settings ------------------------------------------------------------------


def _require_manager(user: User) -> None:
    if not (user.is_admin or user.role == Role.MANAGER):
        raise PermissionDenied("Only managers and admins change pipelines.")


@login_required
def pipeline_settings_view(request: AuthedRequest) -> HttpResponse:
    _require_manager(request.user)
    if request.method == "POST":
        form = PipelineForm(request.POST)
        pipeline = act_on_form(
            form,
            lambda: actions.pipeline_create(
                name=form.cleaned_data["name"],
                stages=form.cleaned_data["stages"],
                is_default=form.cleaned_data["is_default"],
            ),
        )
        if pipeline is not None:
            messages.success(request, f"Created pipeline {pipeline.name}.")
            return redirect("pipeline-settings")
    else:
        form = PipelineForm()
    context = {
        "nav": "pipeline",
        "form": form,
        "pipelines": list(Pipeline.objects.prefetch_related("stages")),
    }
    return render(request, "sales/pipeline_settings.html", context, status=400 if form.errors else 200)


# --- product catalogue ------------------------------------------------------------------


def _manages_catalogue(user: User) -> bool:
    return user.can_write and (user.is_admin or user.role == Role.MANAGER)


@login_required
def product_list_view(request: AuthedRequest) -> HttpResponse:
    """Everyone sees the catalogue (orders name its products); managers and admins add
    products and deactivate or reactivate them."""
    manager = _manages_catalogue(request.user)
    form = ProductForm()
    if request.method == "POST":
        if not manager:
            raise PermissionDenied("Only managers and admins manage the product catalogue.")
        form = ProductForm(request.POST)
        product = act_on_form(form, lambda: actions.product_create(actor=request.user, **form.cleaned_data))
        if product is not None:
            messages.success(request, f"Added product {product.name}.")
            return redirect("product-list")
    context = {
        "nav": "pipeline",
        "products": list(Product.objects.order_by("-active", "name", "id")[:1000]),
        "form": form if manager else None,
        "can_manage": manager,
    }
    return render(request, "sales/product_list.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def product_active_view(request: AuthedRequest, pk: int) -> HttpResponse:
    if not _manages_catalogue(request.user):
        raise PermissionDenied("Only managers and admins manage the product catalogue.")
    product = Product.objects.filter(pk=pk).first()
    if product is None:
        raise Http404("Not found")
    active = request.POST.get("active") == "1"
    try:
        actions.product_update(actor=request.user, product=product, data={"active": active})
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{product.name} is {'active' if active else 'deactivated'}.")
    return redirect("product-list")


# --- installed base ---------------------------------------------------------------------


@login_required
@require_POST
def order_add_view(request: AuthedRequest, pk: int) -> HttpResponse:
    org = organisation_detail(user=request.user, org_id=pk)
    require_editable(request.user, org, "You can see this organisation but not change it.")
    act_on_post(
        request,
        OrderForm(request.POST),
        lambda data: actions.order_create(actor=request.user, organisation=org, **data),
        "Order added.",
    )
    return redirect("organisation-detail", pk=pk)
