"""Listening API: queries (CRUD; a syntax error is a 400 on `text` naming the column),
mentions (filtered cursor list, detail, sentiment correction, state, conversion to an inbox
conversation), alert rules (CRUD), sources (CRUD, managers and admins write; tokens are
write-only), alerts (list, acknowledge, resolve) and dashboard figures."""

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import Http404
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import Field

from rapport.api.pagination import PageParams, fetch_page, page_out, page_schema
from rapport.api.schemas import Chars, Id, InputSchema
from rapport.core.access import get_editable, get_visible
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.core.pagination import keyset_page
from rapport.listening import actions, dashboard, selectors
from rapport.listening.alerts import alert_set_state
from rapport.listening.handoff import mention_to_conversation
from rapport.listening.models import Alert, AlertRule, ListeningQuery, ListeningSource, Mention
from rapport.listening.query import QuerySyntaxError, parse

router = Router(tags=["Listening"])

SourceName = Literal["rss", "mastodon", "x", "bluesky", "reddit"]


# --- queries ---------------------------------------------------------------------------------


class QueryOut(Schema):
    id: int
    name: str
    kind: str
    text: str
    sources: list[str]
    languages: list[str]
    is_competitor: bool
    is_active: bool
    owner: int
    team: int | None
    visibility: str
    version: int
    error: str | None = Field(None, description="Set when the stored text no longer parses.")


class QueryIn(InputSchema):
    name: Annotated[str, Chars(100)]
    text: Annotated[str, Chars(2000)]
    kind: Literal["brand", "product", "competitor", "hashtag"] = "brand"
    sources: list[SourceName] = Field(default_factory=list, max_length=5)
    languages: list[Annotated[str, Chars(3)]] = Field(default_factory=list, max_length=20)
    is_competitor: bool | None = None
    is_active: bool = True
    visibility: Literal["private", "team", "everyone"] = "everyone"
    team_id: Id | None = None


class QueryPatch(InputSchema):
    name: Annotated[str, Chars(100)] | None = None
    text: Annotated[str, Chars(2000)] | None = None
    kind: Literal["brand", "product", "competitor", "hashtag"] | None = None
    sources: list[SourceName] | None = Field(None, max_length=5)
    languages: list[Annotated[str, Chars(3)]] | None = Field(None, max_length=20)
    is_competitor: bool | None = None
    is_active: bool | None = None
    visibility: Literal["private", "team", "everyone"] | None = None
    team_id: Id | None = None
    version: int | None = Field(None, description="The version you loaded; a stale one is a 409.")


class CheckIn(InputSchema):
    text: Annotated[str, Chars(2000)]


class CheckOut(Schema):
    valid: bool
    error: str | None
    column: int | None


def _query_out(q: ListeningQuery) -> dict[str, Any]:
    try:
        parse(q.text)
        error = None
    except QuerySyntaxError as exc:
        error = str(exc)
    return {
        "id": q.pk,
        "name": q.name,
        "kind": q.kind,
        "text": q.text,
        "sources": q.sources,
        "languages": q.languages,
        "is_competitor": q.is_competitor,
        "is_active": q.is_active,
        "owner": q.owner_id,
        "team": q.team_id,
        "visibility": q.visibility,
        "version": q.version,
        "error": error,
    }


@router.get("/listening/queries", response=list[QueryOut])
def list_queries(request: ApiRequest) -> list[dict[str, Any]]:
    return [_query_out(q) for q in selectors.queries_visible(request.auth)[:500]]


@router.post("/listening/queries/check", response=CheckOut)
def check_query(request: ApiRequest, payload: CheckIn) -> dict[str, Any]:
    """Validate a query as it is typed; the UI shows the message next to the field."""
    try:
        parse(payload.text)
    except QuerySyntaxError as exc:
        return {"valid": False, "error": str(exc), "column": exc.column}
    return {"valid": True, "error": None, "column": None}


@router.post("/listening/queries", response={201: QueryOut})
def create_query(request: ApiRequest, payload: QueryIn) -> Status:
    data = payload.model_dump(exclude_none=True)
    q = actions.query_create(actor=request.auth, data=data)
    return Status(201, _query_out(q))


@router.get("/listening/queries/{query_id}", response=QueryOut)
def get_query(request: ApiRequest, query_id: Id) -> dict[str, Any]:
    return _query_out(selectors.query_get(request.auth, query_id))


@router.patch("/listening/queries/{query_id}", response=QueryOut)
def update_query(request: ApiRequest, query_id: Id, payload: QueryPatch) -> dict[str, Any]:
    q = get_editable(ListeningQuery, request.auth, query_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version", None)
    return _query_out(actions.query_update(actor=request.auth, query=q, data=data, expected_version=version))


@router.delete("/listening/queries/{query_id}", response={204: None})
def delete_query(request: ApiRequest, query_id: Id) -> Status:
    actions.query_delete(actor=request.auth, query=get_editable(ListeningQuery, request.auth, query_id))
    return Status(204, None)


# --- mentions --------------------------------------------------------------------------------


class MentionOut(Schema):
    id: int
    source_kind: str
    external_id: str
    url: str
    author_handle: str
    author_name: str
    author_followers: int
    person: int | None
    organisation: int | None
    title: str
    text: str
    language: str
    published_at: dt.datetime
    reach: int
    likes: int
    shares: int
    replies: int
    engagement: int
    links: list[str]
    sentiment: str
    score: float
    intent: str
    urgency: str
    sentiment_corrected: bool
    keywords: list[str]
    hashtags: list[str]
    influence: float
    state: str
    owner: int | None
    conversation: int | None
    queries: list[int]


MentionPage = page_schema("MentionPage", MentionOut)


class MentionQuery(Schema):
    query: Id | None = None
    source: SourceName | None = None
    sentiment: Literal["negative", "neutral", "positive"] | None = None
    intent: Literal["complaint", "question", "purchase_intent", "churn_intent", "praise", "other"] | None = (
        None
    )
    state: Literal["new", "reviewed", "converted", "ignored"] | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    author: Annotated[str, Chars(320)] | None = None
    person: Id | None = None


def _mentions_out(user: Any, mentions: list[Mention]) -> list[dict[str, Any]]:
    from rapport.listening.models import MentionMatch

    visible_q = set(selectors.queries_visible(user).values_list("id", flat=True))
    by_mention: dict[int, list[int]] = {}
    for mid, qid in MentionMatch.objects.filter(mention_id__in=[m.pk for m in mentions]).values_list(
        "mention_id", "query_id"
    ):
        if qid in visible_q:
            by_mention.setdefault(mid, []).append(qid)
    return [
        {
            **{
                f: getattr(m, f)
                for f in MentionOut.model_fields
                if f not in ("person", "organisation", "owner", "conversation", "queries")
            },
            "person": m.person_id,
            "organisation": m.organisation_id,
            "owner": m.owner_id,
            "conversation": m.conversation_id,
            "queries": by_mention.get(m.pk, []),
        }
        for m in mentions
    ]


@router.get("/listening/mentions", response=MentionPage)
def list_mentions(
    request: ApiRequest, filters: Query[MentionQuery], page: Query[PageParams]
) -> dict[str, Any]:
    f = selectors.MentionFilters.parse(filters.model_dump())
    result = fetch_page(
        lambda: selectors.mention_list(request.auth, f, cursor=page.cursor, limit=page.limit), page.cursor
    )
    return page_out(result, _mentions_out(request.auth, result.items))


@router.get("/listening/mentions/{mention_id}", response=MentionOut)
def get_mention(request: ApiRequest, mention_id: Id) -> dict[str, Any]:
    return _mentions_out(request.auth, [selectors.mention_get(request.auth, mention_id)])[0]


class SentimentIn(InputSchema):
    label: Literal["negative", "neutral", "positive"]


class StateIn(InputSchema):
    state: Literal["new", "reviewed", "ignored"]


@router.post("/listening/mentions/{mention_id}/sentiment", response=MentionOut)
def correct_sentiment(request: ApiRequest, mention_id: Id, payload: SentimentIn) -> dict[str, Any]:
    """One-click correction: the mention takes the label, and the learned model gets the example."""
    m = selectors.mention_get(request.auth, mention_id)
    actions.mention_correct_sentiment(actor=request.auth, mention=m, label=payload.label)
    return _mentions_out(request.auth, [m])[0]


@router.post("/listening/mentions/{mention_id}/state", response=MentionOut)
def set_mention_state(request: ApiRequest, mention_id: Id, payload: StateIn) -> dict[str, Any]:
    m = selectors.mention_get(request.auth, mention_id)
    actions.mention_set_state(actor=request.auth, mention=m, state=payload.state)
    return _mentions_out(request.auth, [m])[0]


class ConvertOut(Schema):
    mention: int
    conversation: int
    assignee: int | None


@router.post("/listening/mentions/{mention_id}/convert", response=ConvertOut)
def convert_mention(request: ApiRequest, mention_id: Id) -> dict[str, Any]:
    m = selectors.mention_get(request.auth, mention_id)
    conv = mention_to_conversation(mention=m, actor=request.auth)
    return {"mention": m.pk, "conversation": conv.pk, "assignee": conv.assignee_id}


# --- alert rules and alerts ---------------------------------------------------------------------


class RuleOut(Schema):
    id: int
    name: str
    kind: str
    query: int | None
    min_influence: float
    metric: str
    window_hours: int
    baseline_days: int
    factor: float
    min_count: int
    cooldown_hours: int
    auto_convert: bool
    email: bool
    is_active: bool
    owner: int
    team: int | None
    visibility: str
    last_fired_at: dt.datetime | None


class RuleIn(InputSchema):
    name: Annotated[str, Chars(100)]
    kind: Literal["negative_influence", "customer_complaint", "velocity"]
    query_id: Id | None = None
    min_influence: float = Field(50, ge=0, le=100)
    metric: Literal["volume", "negative_share"] = "volume"
    window_hours: int = Field(24, ge=1, le=336)
    baseline_days: int = Field(14, ge=1, le=365)
    factor: float = Field(2.0, ge=1, le=100)
    min_count: int = Field(10, ge=1, le=1_000_000)
    cooldown_hours: int = Field(24, ge=0, le=720)
    auto_convert: bool = False
    email: bool = True
    is_active: bool = True
    visibility: Literal["private", "team", "everyone"] = "everyone"
    team_id: Id | None = None


def _rule_out(r: AlertRule) -> dict[str, Any]:
    return {
        **{f: getattr(r, f) for f in RuleOut.model_fields if f not in ("query", "owner", "team")},
        "query": r.query_id,
        "owner": r.owner_id,
        "team": r.team_id,
    }


@router.get("/listening/rules", response=list[RuleOut])
def list_rules(request: ApiRequest) -> list[dict[str, Any]]:
    return [_rule_out(r) for r in selectors.rules_visible(request.auth)[:500]]


@router.post("/listening/rules", response={201: RuleOut})
def create_rule(request: ApiRequest, payload: RuleIn) -> Status:
    return Status(201, _rule_out(actions.rule_save(actor=request.auth, data=payload.model_dump())))


class RulePatch(InputSchema):
    name: Annotated[str, Chars(100)] | None = None
    kind: Literal["negative_influence", "customer_complaint", "velocity"] | None = None
    query_id: Id | None = None
    min_influence: float | None = Field(None, ge=0, le=100)
    metric: Literal["volume", "negative_share"] | None = None
    window_hours: int | None = Field(None, ge=1, le=336)
    baseline_days: int | None = Field(None, ge=1, le=365)
    factor: float | None = Field(None, ge=1, le=100)
    min_count: int | None = Field(None, ge=1, le=1_000_000)
    cooldown_hours: int | None = Field(None, ge=0, le=720)
    auto_convert: bool | None = None
    email: bool | None = None
    is_active: bool | None = Field(None, description="false pauses the rule and keeps its alerts.")
    visibility: Literal["private", "team", "everyone"] | None = None
    team_id: Id | None = None
    version: int | None = Field(None, description="The version you loaded; a stale one is a 409.")


@router.get("/listening/rules/{rule_id}", response=RuleOut)
def get_rule(request: ApiRequest, rule_id: Id) -> dict[str, Any]:
    return _rule_out(get_visible(AlertRule, request.auth, rule_id, selectors.rules_visible(request.auth)))


@router.patch("/listening/rules/{rule_id}", response=RuleOut)
def update_rule(request: ApiRequest, rule_id: Id, payload: RulePatch) -> dict[str, Any]:
    rule = get_editable(AlertRule, request.auth, rule_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version", None)
    # null clears only what may be empty (the query: all mentions; the team); elsewhere it
    # means "unchanged", as leaving the field out does.
    data = {k: v for k, v in data.items() if v is not None or k in ("query_id", "team_id")}
    return _rule_out(actions.rule_save(actor=request.auth, data=data, rule=rule, expected_version=version))


@router.delete("/listening/rules/{rule_id}", response={204: None})
def delete_rule(request: ApiRequest, rule_id: Id) -> Status:
    """Deletes the rule and the alerts it raised; the mentions stay. PATCH is_active=false
    pauses it instead."""
    actions.rule_delete(actor=request.auth, rule=get_editable(AlertRule, request.auth, rule_id))
    return Status(204, None)


# --- sources -----------------------------------------------------------------------------------


class SourceOut(Schema):
    id: int
    kind: str
    name: str
    config: dict[str, Any]
    has_token: bool = Field(description="A token is stored (encrypted); it is never returned.")
    is_active: bool
    last_polled_at: dt.datetime | None
    last_error: str
    last_error_at: dt.datetime | None
    fetched_total: int
    stored_total: int
    bad_items_total: int
    created_at: dt.datetime


class SourceIn(InputSchema):
    kind: Literal["rss", "mastodon", "x", "x_stream", "bluesky", "reddit"]
    name: Annotated[str, Chars(100)]
    config: dict[str, Any] = Field(default_factory=dict)
    token: Annotated[str, Chars(4000)] | None = Field(None, description="Stored encrypted; write-only.")
    is_active: bool = True


class SourcePatch(InputSchema):
    name: Annotated[str, Chars(100)] | None = None
    config: dict[str, Any] | None = None
    token: Annotated[str, Chars(4000)] | None = None
    clear_token: bool = False
    is_active: bool | None = Field(None, description="false pauses polling; everything stored stays.")


def _source_out(s: ListeningSource) -> dict[str, Any]:
    return {
        **{f: getattr(s, f) for f in SourceOut.model_fields if f != "has_token"},
        "has_token": bool(s.credentials_encrypted),
    }


def _manager(request: ApiRequest) -> None:
    if not (request.auth.can_write and actions.can_manage_sources(request.auth)):
        raise HttpError(403, "Only managers and admins manage sources.")


def _source(source_id: int) -> ListeningSource:
    source = ListeningSource.objects.filter(pk=source_id).first()
    if source is None:
        raise Http404("Not found")
    return source


@router.get("/listening/sources", response=list[SourceOut])
def list_sources(request: ApiRequest) -> list[dict[str, Any]]:
    return [_source_out(s) for s in ListeningSource.objects.all()[:500]]


@router.get("/listening/sources/{source_id}", response=SourceOut)
def get_source(request: ApiRequest, source_id: Id) -> dict[str, Any]:
    return _source_out(_source(source_id))


@router.post("/listening/sources", response={201: SourceOut})
def create_source(request: ApiRequest, payload: SourceIn) -> Status:
    _manager(request)
    source = actions.source_create(actor=request.auth, data=payload.model_dump(exclude_none=True))
    return Status(201, _source_out(source))


@router.patch("/listening/sources/{source_id}", response=SourceOut)
def update_source(request: ApiRequest, source_id: Id, payload: SourcePatch) -> dict[str, Any]:
    _manager(request)
    source = _source(source_id)
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return _source_out(actions.source_update(actor=request.auth, source=source, data=data))


@router.delete("/listening/sources/{source_id}", response={204: None})
def delete_source(request: ApiRequest, source_id: Id) -> Status:
    """Deletes the source and its cursors; the mentions it stored are kept. PATCH
    is_active=false pauses it instead."""
    _manager(request)
    actions.source_delete(actor=request.auth, source=_source(source_id))
    return Status(204, None)


class AlertOut(Schema):
    id: int
    rule: int
    rule_name: str
    kind: str
    title: str
    detail: str
    owner: int | None
    state: str
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    mentions: list[int]


AlertPage = page_schema("AlertPage", AlertOut)


class AlertQuery(Schema):
    state: Literal["open", "acknowledged", "resolved"] | None = None
    mine: bool = False


def _alerts_out(alerts: list[Alert]) -> list[dict[str, Any]]:
    through = Alert.mentions.through
    by_alert: dict[int, list[int]] = {}
    for aid, mid in through.objects.filter(alert_id__in=[a.pk for a in alerts]).values_list(
        "alert_id", "mention_id"
    ):
        by_alert.setdefault(aid, []).append(mid)
    return [
        {
            "id": a.pk,
            "rule": a.rule_id,
            "rule_name": a.rule.name,
            "kind": a.rule.kind,
            "title": a.title,
            "detail": a.detail,
            "owner": a.owner_id,
            "state": a.state,
            "created_at": a.created_at,
            "acknowledged_at": a.acknowledged_at,
            "resolved_at": a.resolved_at,
            "mentions": sorted(by_alert.get(a.pk, [])),
        }
        for a in alerts
    ]


@router.get("/listening/alerts", response=AlertPage)
def list_alerts(request: ApiRequest, filters: Query[AlertQuery], page: Query[PageParams]) -> dict[str, Any]:
    qs = selectors.alerts_visible(request.auth)
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.mine:
        qs = qs.filter(owner=request.auth)
    result = fetch_page(lambda: keyset_page(qs, ["-created_at", "-id"], page.cursor, page.limit), page.cursor)
    return page_out(result, _alerts_out(result.items))


@router.get("/listening/alerts/{alert_id}", response=AlertOut)
def get_alert(request: ApiRequest, alert_id: Id) -> dict[str, Any]:
    return _alerts_out([selectors.alert_get(request.auth, alert_id)])[0]


@router.post("/listening/alerts/{alert_id}/acknowledge", response=AlertOut)
def acknowledge_alert(request: ApiRequest, alert_id: Id) -> dict[str, Any]:
    alert = selectors.alert_get(request.auth, alert_id)
    return _alerts_out([alert_set_state(actor=request.auth, alert=alert, state="acknowledged")])[0]


@router.post("/listening/alerts/{alert_id}/resolve", response=AlertOut)
def resolve_alert(request: ApiRequest, alert_id: Id) -> dict[str, Any]:
    alert = selectors.alert_get(request.auth, alert_id)
    return _alerts_out([alert_set_state(actor=request.auth, alert=alert, state="resolved")])[0]


# --- dashboard -------------------------------------------------------------------------------


class DashboardQuery(Schema):
    since: dt.date | None = None
    until: dt.date | None = None
    query: Id | None = None
    bucket: Literal["day", "week"] | None = None


@router.get("/listening/dashboard", response=dict)
def dashboard_figures(request: ApiRequest, params: Query[DashboardQuery]) -> dict[str, Any]:
    """Volume and sentiment per day or week, share of voice, sources, topics, advocates and
    detractors over at most a year."""
    if params.since and params.until and params.since > params.until:
        raise ActionError("since is after until.", {"since": ["Must be on or before until."]})
    fig = dashboard.figures(
        request.auth,
        since=params.since,
        until=params.until,
        query_id=params.query or 0,
        bucket=params.bucket or "",
    )
    return fig.as_dict()
