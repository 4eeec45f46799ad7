"""Listening pages: dashboard, mentions (list, detail, CSV), queries, alert rules, alerts,
sources. Thin: parse → selector/action → render."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.access import can_edit, get_visible
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.listening import actions, dashboard, selectors
from rapport.listening.alerts import alert_set_state
from rapport.listening.charts import hbar_chart, stacked_bar_chart
from rapport.listening.handoff import mention_to_conversation
from rapport.listening.models import (
    MENTION_KINDS,
    AlertRule,
    AlertState,
    ListeningSource,
    MentionState,
    QueryKind,
    RuleKind,
    Sentiment,
    SourceKind,
    VelocityMetric,
)
from rapport.web.charts import Series

EXPORT_CAP = 100_000


def _base(request: AuthedRequest, **ctx: Any) -> dict[str, Any]:
    return {"nav": "listening", "open_alerts": selectors.open_alert_count(request.user), **ctx}


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


# --- dashboard -------------------------------------------------------------------------------


@login_required
def dashboard_view(request: AuthedRequest) -> HttpResponse:
    try:
        query_id = int(request.GET.get("query") or 0)
    except ValueError:
        query_id = 0
    fig = dashboard.figures(
        request.user,
        since=_date(request.GET.get("since")),
        until=_date(request.GET.get("until")),
        query_id=query_id,
        bucket=request.GET.get("bucket", ""),
    )
    step = 7 if fig.bucket == "week" else 1
    base: dict[str, str | int] = {"query": fig.query_id} if fig.query_id else {}
    links = []
    d = fig.since - dt.timedelta(days=fig.since.weekday()) if fig.bucket == "week" else fig.since
    for _ in fig.labels:
        until = min(d + dt.timedelta(days=step - 1), fig.until)
        links.append(
            "/listening/mentions/?"
            + urlencode({**base, "since": max(d, fig.since).isoformat(), "until": until.isoformat()})
        )
        d += dt.timedelta(days=step)
    volume_chart = stacked_bar_chart(
        labels=fig.labels,
        series=[
            Series("Negative", fig.volume["negative"], "bar-neg"),
            Series("Neutral", fig.volume["neutral"], "bar-neu"),
            Series("Positive", fig.volume["positive"], "bar-pos"),
        ],
        title=f"Mentions per {fig.bucket} by sentiment",
        links=links,
    )
    sov_chart = hbar_chart(
        rows=[(x["name"], x["share"], "bar-comp" if x["competitor"] else "bar") for x in fig.share_of_voice],
        title="Share of voice",
    )
    total = fig.totals.get("all", 0)
    ctx = _base(
        request,
        fig=fig,
        volume_chart=volume_chart,
        sov_chart=sov_chart,
        queries=selectors.queries_visible(request.user).filter(is_active=True),
        negative_share=round(100 * fig.totals.get("negative", 0) / total, 1) if total else 0,
        range_params=urlencode({**base, "since": fig.since.isoformat(), "until": fig.until.isoformat()}),
    )
    return render(request, "listening/dashboard.html", ctx)


# --- mentions ----------------------------------------------------------------------------------


@login_required
def mention_list_view(request: AuthedRequest) -> HttpResponse:
    error = None
    try:
        f = selectors.MentionFilters.parse(request.GET)
        page = selectors.mention_list(request.user, f, cursor=request.GET.get("cursor"), limit=50)
    except ActionError as exc:
        error = exc.message + " " + " ".join(m for msgs in exc.field_errors.values() for m in msgs)
        f, page = selectors.MentionFilters(), None
    ctx = _base(
        request,
        filters=f,
        page=page,
        error=error,
        is_first_page=not request.GET.get("cursor"),
        export_query=urlencode(f.as_params()),
        queries=selectors.queries_visible(request.user),
        sources=SourceKind.choices,
        sentiments=Sentiment.choices,
        intents=selectors.INTENTS,
        states=MentionState.choices,
    )
    return render(request, "listening/mention_list.html", ctx)


def csv_safe(value: Any) -> str:
    """Spreadsheets run cells starting with = + - @ (and tab/CR) as formulas."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def mention_export_view(request: AuthedRequest) -> StreamingHttpResponse | HttpResponse:
    try:
        f = selectors.MentionFilters.parse(request.GET)
        qs = selectors.mention_filter(request.user, f).order_by("-published_at", "-id")
    except ActionError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    header = [
        "id",
        "published_at",
        "source",
        "url",
        "author_handle",
        "author_name",
        "followers",
        "text",
        "language",
        "sentiment",
        "score",
        "intent",
        "urgency",
        "influence",
        "likes",
        "shares",
        "replies",
        "keywords",
        "hashtags",
        "state",
        "person_id",
    ]

    def rows() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(header)
        fields = (
            "id",
            "published_at",
            "source_kind",
            "url",
            "author_handle",
            "author_name",
            "author_followers",
            "text",
            "language",
            "sentiment",
            "score",
            "intent",
            "urgency",
            "influence",
            "likes",
            "shares",
            "replies",
            "keywords",
            "hashtags",
            "state",
            "person_id",
        )
        for values in qs.values_list(*fields)[:EXPORT_CAP].iterator(chunk_size=2000):
            out = list(values)
            out[1] = out[1].isoformat()
            out[17], out[18] = " ".join(out[17] or []), " ".join(out[18] or [])
            yield writer.writerow([csv_safe(v) for v in out])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="mentions-{stamp}.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def mention_detail_view(request: AuthedRequest, mention_id: int) -> HttpResponse:
    m = selectors.mention_get(request.user, mention_id)
    visible_q = selectors.queries_visible(request.user)
    ctx = _base(
        request,
        m=m,
        queries=visible_q.filter(matches__mention=m),
        alerts=selectors.alerts_visible(request.user).filter(mentions=m),
        sentiments=Sentiment.choices,
        can_write=request.user.can_write,
    )
    return render(request, "listening/mention_detail.html", ctx)


@login_required
@require_POST
def mention_action_view(request: AuthedRequest, mention_id: int) -> HttpResponse:
    m = selectors.mention_get(request.user, mention_id)
    action = request.POST.get("action", "")
    try:
        if action == "sentiment":
            actions.mention_correct_sentiment(
                actor=request.user, mention=m, label=request.POST.get("label", "")
            )
            messages.success(request, "Sentiment corrected; the learned model will use it.")
        elif action == "state":
            actions.mention_set_state(actor=request.user, mention=m, state=request.POST.get("state", ""))
        elif action == "convert":
            conv = mention_to_conversation(mention=m, actor=request.user)
            messages.success(request, "The mention is now an inbox conversation.")
            return redirect(f"/inbox/{conv.pk}/")
        else:
            messages.error(request, "Unknown action.")
    except ActionError as exc:
        messages.error(request, exc.message)
    return redirect(f"/listening/mentions/{m.pk}/")


# --- queries -----------------------------------------------------------------------------------


def _query_data(post: Any) -> dict[str, Any]:
    return {
        "name": post.get("name", ""),
        "kind": post.get("kind", QueryKind.BRAND),
        "text": post.get("text", ""),
        "sources": post.getlist("sources"),
        "languages": [x for x in post.get("languages", "").replace(",", " ").split() if x],
        "is_competitor": post.get("is_competitor") == "on",
        "is_active": post.get("is_active") == "on",
        "visibility": post.get("visibility", "everyone"),
        "team_id": post.get("team") or None,
    }


def _query_form_ctx(request: AuthedRequest, **ctx: Any) -> dict[str, Any]:
    return _base(
        request,
        kinds=QueryKind.choices,
        sources=[c for c in SourceKind.choices if c[0] in MENTION_KINDS],
        teams=request.user.teams.all(),
        **ctx,
    )


@login_required
@require_http_methods(["GET", "POST"])
def query_list_view(request: AuthedRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {"is_active": True, "visibility": "everyone", "kind": "brand", "sources": []}
    if request.method == "POST":
        data = _query_data(request.POST)
        try:
            actions.query_create(actor=request.user, data=data)
            messages.success(request, "Query saved; new mentions will be matched from now on.")
            return redirect("/listening/queries/")
        except ActionError as exc:
            errors = exc.field_errors or {"form": [exc.message]}
    items = list(selectors.queries_visible(request.user))
    for q in items:
        from rapport.listening.query import check

        q.error = check(q.text)  # type: ignore[attr-defined]
        q.editable = can_edit(request.user, q)  # type: ignore[attr-defined]
    status = 400 if errors else 200
    return render(
        request,
        "listening/query_list.html",
        _query_form_ctx(request, items=items, data=data, errors=errors),
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def query_edit_view(request: AuthedRequest, query_id: int) -> HttpResponse:
    q = selectors.query_get(request.user, query_id)
    if not can_edit(request.user, q):
        raise PermissionDenied
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {
        "name": q.name,
        "kind": q.kind,
        "text": q.text,
        "sources": q.sources,
        "languages": q.languages,
        "is_competitor": q.is_competitor,
        "is_active": q.is_active,
        "visibility": q.visibility,
        "team_id": q.team_id,
        "version": q.version,
    }
    if request.method == "POST":
        if request.POST.get("delete") == "1":
            actions.query_delete(actor=request.user, query=q)
            messages.success(request, "Query deleted.")
            return redirect("/listening/queries/")
        data = _query_data(request.POST)
        try:
            version = int(request.POST.get("version", "0"))
        except ValueError:
            version = 0
        try:
            actions.query_update(actor=request.user, query=q, data=dict(data), expected_version=version)
            messages.success(request, "Query saved.")
            return redirect("/listening/queries/")
        except ActionError as exc:
            errors = exc.field_errors or {"form": [exc.message]}
            data["version"] = version
    return render(
        request,
        "listening/query_form.html",
        _query_form_ctx(request, q=q, data=data, errors=errors),
        status=400 if errors else 200,
    )


# --- alerts and rules --------------------------------------------------------------------------


@login_required
def alert_list_view(request: AuthedRequest) -> HttpResponse:
    from rapport.core.pagination import keyset_page

    state = request.GET.get("state", AlertState.OPEN)
    qs = selectors.alerts_visible(request.user)
    if state in AlertState.values:
        qs = qs.filter(state=state)
    if request.GET.get("mine"):
        qs = qs.filter(owner=request.user)
    try:
        page = keyset_page(qs, ["-created_at", "-id"], request.GET.get("cursor"), 50)
    except ActionError:
        page = keyset_page(qs, ["-created_at", "-id"], None, 50)
    ctx = _base(
        request,
        page=page,
        state=state,
        states=AlertState.choices,
        is_first_page=not request.GET.get("cursor"),
    )
    return render(request, "listening/alert_list.html", ctx)


@login_required
def alert_detail_view(request: AuthedRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_get(request.user, alert_id)
    mentions = alert.mentions.select_related("person", "organisation").order_by("-influence", "-id")[:50]
    return render(request, "listening/alert_detail.html", _base(request, alert=alert, mentions=mentions))


@login_required
@require_POST
def alert_action_view(request: AuthedRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_get(request.user, alert_id)
    try:
        alert_set_state(actor=request.user, alert=alert, state=request.POST.get("state", ""))
    except ActionError as exc:
        messages.error(request, exc.message)
    return redirect(
        request.POST.get("back") == "list" and "/listening/alerts/" or f"/listening/alerts/{alert.pk}/"
    )


def _rule_data(post: Any) -> dict[str, Any]:
    return {
        "name": post.get("name", ""),
        "kind": post.get("kind", ""),
        "query_id": post.get("query") or None,
        "min_influence": post.get("min_influence") or 50,
        "metric": post.get("metric") or "volume",
        "window_hours": post.get("window_hours") or 24,
        "baseline_days": post.get("baseline_days") or 14,
        "factor": post.get("factor") or 2,
        "min_count": post.get("min_count") or 10,
        "cooldown_hours": post.get("cooldown_hours") or 24,
        "auto_convert": post.get("auto_convert") == "on",
        "email": post.get("email") == "on",
        "is_active": post.get("is_active") == "on",
        "visibility": post.get("visibility", "everyone"),
        "team_id": post.get("team") or None,
    }


def _rule_ctx(request: AuthedRequest, **ctx: Any) -> dict[str, Any]:
    return _base(
        request,
        kinds=RuleKind.choices,
        metrics=VelocityMetric.choices,
        queries=selectors.queries_visible(request.user),
        teams=request.user.teams.all(),
        **ctx,
    )


def _version(post: Any) -> int:
    try:
        return int(post.get("version", "0"))
    except ValueError:
        return 0


@login_required
@require_http_methods(["GET", "POST"])
def rule_list_view(request: AuthedRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {
        "kind": RuleKind.NEGATIVE_INFLUENCE,
        "email": True,
        "is_active": True,
        "visibility": "everyone",
    }
    if request.method == "POST":
        data = _rule_data(request.POST)
        try:
            actions.rule_save(actor=request.user, data=dict(data))
            messages.success(request, "Alert rule saved.")
            return redirect("/listening/rules/")
        except ActionError as exc:
            errors = exc.field_errors or {"form": [exc.message]}
    rules = list(selectors.rules_visible(request.user))
    for r in rules:
        r.editable = can_edit(request.user, r)  # type: ignore[attr-defined]
    ctx = _rule_ctx(request, rules=rules, data=data, errors=errors)
    return render(request, "listening/rule_list.html", ctx, status=400 if errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit_view(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule = get_visible(AlertRule, request.user, rule_id, selectors.rules_visible(request.user))
    if not can_edit(request.user, rule):
        raise PermissionDenied
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {
        **{
            f: getattr(rule, f)
            for f in (
                "name", "kind", "query_id", "min_influence", "metric", "window_hours", "baseline_days",
                "factor", "min_count", "cooldown_hours", "auto_convert", "email", "is_active",
                "visibility", "team_id", "version",
            )
        }
    }  # fmt: skip
    if request.method == "POST":
        if request.POST.get("delete") == "1":
            gone = actions.rule_delete(actor=request.user, rule=rule)
            messages.success(request, f"Rule deleted with its {gone} alert(s); the mentions are kept.")
            return redirect("/listening/rules/")
        data = _rule_data(request.POST)
        version = _version(request.POST)
        try:
            actions.rule_save(actor=request.user, data=dict(data), rule=rule, expected_version=version)
            messages.success(request, "Alert rule saved.")
            return redirect("/listening/rules/")
        except ActionError as exc:
            errors = exc.field_errors or {"form": [exc.message]}
            data["version"] = version
    alerts = rule.alerts.count()
    ctx = _rule_ctx(request, rule=rule, data=data, errors=errors, alert_count=alerts)
    return render(request, "listening/rule_form.html", ctx, status=400 if errors else 200)


# --- sources -----------------------------------------------------------------------------------


def _source_data(post: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    data: dict[str, Any] = {k: post[k] for k in ("kind", "name", "token") if k in post}
    # The add form has no checkbox (a new source is active); the edit form says it has one.
    data["is_active"] = post.get("is_active") == "on" if "has_active" in post else True
    data["clear_token"] = post.get("clear_token") == "on"
    raw = post.get("config", "") or "{}"
    try:
        data["config"] = json.loads(raw)
    except ValueError as exc:
        errors["config"] = [f"Settings must be a JSON object; this is not valid JSON ({exc})."]
    return data


def _source_form(data: dict[str, Any], post: Any = None) -> dict[str, Any]:
    """What the form shows again: the settings as typed, never the token."""
    shown = {k: v for k, v in data.items() if k not in ("token", "config")}
    shown["config"] = post.get("config", "") if post is not None else json.dumps(data.get("config") or {})
    return shown


def _save_source(request: AuthedRequest, save: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    data = _source_data(request.POST, errors)
    if errors:
        return errors
    try:
        save(data)
    except ActionError as exc:
        return exc.field_errors or {"form": [exc.message]}
    return {}


@login_required
@require_http_methods(["GET", "POST"])
def source_list_view(request: AuthedRequest) -> HttpResponse:
    manage = actions.can_manage_sources(request.user) and request.user.can_write
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {"kind": "rss", "name": "", "config": "{}", "is_active": True}
    if request.method == "POST":
        if not manage:
            raise PermissionDenied
        errors = _save_source(request, lambda d: actions.source_create(actor=request.user, data=d))
        if not errors:
            messages.success(request, "Source added; it is polled on the next round.")
            return redirect("/listening/sources/")
        data = _source_form(_source_data(request.POST, {}), request.POST)
    ctx = _base(
        request,
        sources=ListeningSource.objects.all(),
        manage=manage,
        kinds=SourceKind.choices,
        data=data,
        errors=errors,
    )
    return render(request, "listening/source_list.html", ctx, status=400 if errors else 200)


def _managed_source(request: AuthedRequest, source_id: int) -> ListeningSource:
    if not (actions.can_manage_sources(request.user) and request.user.can_write):
        raise PermissionDenied
    source = ListeningSource.objects.filter(pk=source_id).first()
    if source is None:
        raise Http404("Not found")
    return source


@login_required
@require_http_methods(["GET", "POST"])
def source_edit_view(request: AuthedRequest, source_id: int) -> HttpResponse:
    source = _managed_source(request, source_id)
    errors: dict[str, list[str]] = {}
    data = _source_form({"name": source.name, "config": source.config, "is_active": source.is_active})
    if request.method == "POST":
        if request.POST.get("delete") == "1":
            kept = actions.source_delete(actor=request.user, source=source)
            messages.success(request, f"Source deleted; its {kept:,} mention(s) are kept.")
            return redirect("/listening/sources/")
        errors = _save_source(
            request, lambda d: actions.source_update(actor=request.user, source=source, data=d)
        )
        if not errors:
            messages.success(request, "Source saved.")
            return redirect("/listening/sources/")
        data = _source_form(_source_data(request.POST, {}), request.POST)
    ctx = _base(
        request,
        source=source,
        data=data,
        errors=errors,
        mention_count=source.mentions.count(),
        has_token=bool(source.credentials_encrypted),
    )
    return render(request, "listening/source_form.html", ctx, status=400 if errors else 200)


@login_required
@require_POST
def source_toggle_view(request: AuthedRequest, source_id: int) -> HttpResponse:
    source = _managed_source(request, source_id)
    actions.source_update(actor=request.user, source=source, data={"is_active": not source.is_active})
    return redirect("/listening/sources/")
