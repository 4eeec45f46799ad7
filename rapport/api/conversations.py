"""Inbox API: conversations (list, detail with messages, reply, note, assign, status,
priority, bulk, merge and undo, channel hop), canned answers, notifications, routing rules
and SLA policies (admins), channels (admins) and the dead-letter list with replay (admins)."""

import datetime as dt
from typing import Annotated, Any, Literal

from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict, Field

from rapport.accounts.models import Team, User
from rapport.api.pagination import PageParams, fetch_page, page_out, page_schema
from rapport.api.schemas import Chars, Id, InputSchema, team_ref, user_ref
from rapport.channels import actions as channel_actions
from rapport.channels import selectors as channel_selectors
from rapport.channels.models import Channel, RawPayload
from rapport.conversations import actions, selectors
from rapport.conversations.models import CannedAnswer, Conversation, Message, RoutingRule, SlaPolicy
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.core.pagination import keyset_page

router = Router(tags=["Inbox"])


# --- schemas ----------------------------------------------------------------------------


class MessageOut(Schema):
    id: int
    direction: str
    channel: int | None
    external_id: str
    author_kind: str
    author_value: str
    author_name: str
    author_user: dict | None
    subject: str
    text: str
    html: str = Field(description="Sanitised HTML (nh3 allow-list); never the raw HTML.")
    attachments: list[dict]
    is_public: bool
    sent_at: dt.datetime | None
    received_at: dt.datetime
    delivery_status: str
    delivery_error: str
    sentiment: str
    urgency: str


class ConversationOut(Schema):
    id: int
    subject: str
    status: str
    priority: str
    assignee: dict | None
    team: dict | None
    person: dict | None
    organisation: int | None
    deal: int | None
    channels: list[int]
    reply_channel: int | None
    tags: list[str]
    sentiment: str
    urgency: str
    sla_state: str
    sla_first_response_due: dt.datetime | None
    sla_resolution_due: dt.datetime | None
    first_response_at: dt.datetime | None
    last_message_at: dt.datetime
    created_at: dt.datetime
    version: int


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut]


ConversationPage = page_schema("ConversationPage", ConversationOut)


class InboxQuery(Schema):
    view: Annotated[str, Chars(12)] = Field("all", description="mine, unassigned, teams, all or sla.")
    status: Annotated[str, Chars(10)] = Field(
        "open", description="open (new+open+waiting), any, or one status."
    )
    channel: Id | None = None
    team: Id | None = None


class TextIn(InputSchema):
    text: Annotated[str, Chars(20000)]


class SentimentIn(InputSchema):
    label: Literal["negative", "neutral", "positive"]


class AssignIn(InputSchema):
    assignee: Id | None = Field(None, description="User id; null to unassign.")
    version: int | None = None


class StatusIn(InputSchema):
    status: Annotated[str, Chars(10)]
    version: int | None = None


class PriorityIn(InputSchema):
    priority: Annotated[str, Chars(10)]
    version: int | None = None


class ChannelOut(Schema):
    id: int
    kind: str
    name: str
    team: dict | None
    status: str
    last_error: str
    settings: dict
    has_credentials: bool
    inbound_url: str | None


class ChannelCreate(InputSchema):
    kind: Annotated[str, Chars(20)]
    name: Annotated[str, Chars(100)]
    team: Id | None = None
    credentials: dict[str, Annotated[str, Chars(2000)]] = Field(
        default_factory=dict, description="Write-only; never returned."
    )
    settings: dict[str, Any] = Field(default_factory=dict)


class ChannelPatch(InputSchema):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Chars(100)] | None = None
    team: Id | None = None
    status: Annotated[str, Chars(10)] | None = None
    credentials: dict[str, Annotated[str, Chars(2000)]] | None = None
    settings: dict[str, Any] | None = None


class DeadLetterOut(Schema):
    id: int
    channel: int
    received_at: dt.datetime
    delivery_id: str
    status: str
    attempts: int
    error: str
    headers: dict
    body_preview: str


DeadLetterPage = page_schema("DeadLetterPage", DeadLetterOut)


# --- serialisers ------------------------------------------------------------------------


def _person_ref(user: User, conv: Conversation, visible_people: set[int]) -> dict | None:
    if conv.person_id is None:
        return None
    if conv.person_id not in visible_people:
        return {"id": conv.person_id, "name": None}
    person = conv.person
    return {"id": conv.person_id, "name": person.full_name if person is not None else None}


def _conversations_out(user: User, convs: list[Conversation]) -> list[dict[str, Any]]:
    from django.db.models import prefetch_related_objects

    from rapport.people.selectors import visible_person_ids

    prefetch_related_objects(convs, "channels", "tags")
    visible_people = visible_person_ids(user, {c.person_id for c in convs if c.person_id})
    return [
        {
            "id": c.pk,
            "subject": c.subject,
            "status": c.status,
            "priority": c.priority,
            "assignee": user_ref(c.assignee),
            "team": team_ref(c.team),
            "person": _person_ref(user, c, visible_people),
            "organisation": c.organisation_id,
            "deal": c.deal_id,
            "channels": [ch.pk for ch in c.channels.all()],
            "reply_channel": c.reply_channel_id,
            "tags": [t.name for t in c.tags.all()],
            "sentiment": c.sentiment,
            "urgency": c.urgency,
            "sla_state": c.sla_state,
            "sla_first_response_due": c.sla_first_response_due,
            "sla_resolution_due": c.sla_resolution_due,
            "first_response_at": c.first_response_at,
            "last_message_at": c.last_message_at,
            "created_at": c.created_at,
            "version": c.version,
        }
        for c in convs
    ]


def _message_out(m: Message) -> dict[str, Any]:
    return {
        "id": m.pk,
        "direction": m.direction,
        "channel": m.channel_id,
        "external_id": m.external_id,
        "author_kind": m.author_kind,
        "author_value": m.author_value,
        "author_name": m.author_name,
        "author_user": user_ref(m.author_user),
        "subject": m.subject,
        "text": m.text,
        "html": m.html,
        "attachments": m.attachments if isinstance(m.attachments, list) else [],
        "is_public": m.is_public,
        "sent_at": m.sent_at,
        "received_at": m.received_at,
        "delivery_status": m.delivery_status,
        "delivery_error": m.delivery_error,
        "sentiment": m.sentiment,
        "urgency": m.urgency,
    }


def _detail(user: User, conversation_id: int) -> dict[str, Any]:
    conv = selectors.conversation_get(user, conversation_id)
    out = _conversations_out(user, [conv])[0]
    out["messages"] = [_message_out(m) for m in selectors.messages_of(conv)]
    return out


# --- conversations ----------------------------------------------------------------------


@router.get("/conversations", response=ConversationPage)
def list_conversations(
    request: ApiRequest, filters: Query[InboxQuery], page: Query[PageParams]
) -> dict[str, Any]:
    """Newest activity first. Only conversations of your teams or assigned to you (admins: all)."""
    user = request.auth
    f = selectors.InboxFilters(
        view=filters.view, status=filters.status, channel=filters.channel, team=filters.team
    )
    result = fetch_page(
        lambda: selectors.inbox(user=user, filters=f, cursor=page.cursor, limit=page.limit), page.cursor
    )
    return page_out(result, _conversations_out(user, result.items))


# Before /conversations/{id}: ninja matches paths in the order they are added.
class BulkIn(InputSchema):
    ids: list[Id] = Field(..., max_length=200)
    action: Annotated[str, Chars(10)] = Field(..., description="assign, close, status, priority or tag.")
    value: Annotated[str, Chars(100)] = ""


class BulkOut(Schema):
    done: list[int]
    skipped: list[dict]


@router.post("/conversations/bulk", response=BulkOut)
def bulk(request: ApiRequest, payload: BulkIn) -> dict[str, Any]:
    """One change to many conversations; rows you may not change are skipped (as not found)."""
    return actions.conversations_bulk(
        actor=request.auth, ids=payload.ids, action=payload.action, value=payload.value
    )


@router.get("/conversations/{conversation_id}", response=ConversationDetailOut)
def get_conversation(request: ApiRequest, conversation_id: Id) -> dict[str, Any]:
    return _detail(request.auth, conversation_id)


@router.post("/conversations/{conversation_id}/reply", response={201: MessageOut})
def reply(request: ApiRequest, conversation_id: Id, payload: TextIn) -> Status:
    """Queue a reply on the conversation's channel; `delivery_status` tells when it is sent."""
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    message = actions.conversation_reply(actor=request.auth, conversation=conv, text=payload.text)
    return Status(201, _message_out(message))


@router.post("/conversations/{conversation_id}/notes", response={201: MessageOut})
def note(request: ApiRequest, conversation_id: Id, payload: TextIn) -> Status:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    message = actions.conversation_note(actor=request.auth, conversation=conv, text=payload.text)
    return Status(201, _message_out(message))


@router.post("/conversations/{conversation_id}/messages/{message_id}/sentiment", response=MessageOut)
def message_sentiment(
    request: ApiRequest, conversation_id: Id, message_id: Id, payload: SentimentIn
) -> dict[str, Any]:
    """One-click correction of a customer message's sentiment; it also trains the learned backend."""
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    message = get_object_or_404(conv.messages, pk=message_id)
    actions.message_sentiment_correct(actor=request.auth, message=message, label=payload.label)
    return _message_out(message)


@router.post("/conversations/{conversation_id}/assign", response=ConversationOut)
def assign(request: ApiRequest, conversation_id: Id, payload: AssignIn) -> dict[str, Any]:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    assignee = None
    if payload.assignee is not None:
        assignee = User.objects.filter(pk=payload.assignee).first()
        if assignee is None:
            raise ActionError("Unknown user.", {"assignee": ["No such user."]})
    actions.conversation_assign(
        actor=request.auth, conversation=conv, assignee=assignee, expected_version=payload.version
    )
    return _conversations_out(request.auth, [selectors.conversation_get(request.auth, conv.pk)])[0]


@router.post("/conversations/{conversation_id}/status", response=ConversationOut)
def set_status(request: ApiRequest, conversation_id: Id, payload: StatusIn) -> dict[str, Any]:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    actions.conversation_set_status(
        actor=request.auth, conversation=conv, status=payload.status, expected_version=payload.version
    )
    return _conversations_out(request.auth, [selectors.conversation_get(request.auth, conv.pk)])[0]


@router.post("/conversations/{conversation_id}/priority", response=ConversationOut)
def set_priority(request: ApiRequest, conversation_id: Id, payload: PriorityIn) -> dict[str, Any]:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    actions.conversation_set_priority(
        actor=request.auth, conversation=conv, priority=payload.priority, expected_version=payload.version
    )
    return _conversations_out(request.auth, [selectors.conversation_get(request.auth, conv.pk)])[0]


# --- channels (admins) ------------------------------------------------------------------


def _channel_out(c: Channel) -> dict[str, Any]:
    return {
        "id": c.pk,
        "kind": c.kind,
        "name": c.name,
        "team": team_ref(c.team),
        "status": c.status,
        "last_error": c.last_error,
        "settings": c.settings if isinstance(c.settings, dict) else {},
        "has_credentials": bool(c.credentials_encrypted),
        "inbound_url": f"/hooks/{c.kind}/{c.pk}/" if c.kind == "webhook" else None,
    }


def _team(team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise ActionError("Unknown team.", {"team": ["No such team."]})
    return team


@router.get("/channels", response=list[ChannelOut])
def list_channels(request: ApiRequest) -> list[dict[str, Any]]:
    return [_channel_out(c) for c in channel_selectors.channels_for(request.auth)]


@router.post("/channels", response={201: ChannelOut})
def create_channel(request: ApiRequest, payload: ChannelCreate) -> Status:
    channel_selectors.require_admin(request.auth)
    channel = channel_actions.channel_create(
        actor=request.auth,
        kind=payload.kind,
        name=payload.name,
        team=_team(payload.team),
        credentials=payload.credentials,
        settings=payload.settings,
    )
    return Status(201, _channel_out(channel))


@router.get("/channels/{channel_id}", response=ChannelOut)
def get_channel(request: ApiRequest, channel_id: Id) -> dict[str, Any]:
    return _channel_out(channel_selectors.channel_get(request.auth, channel_id))


@router.patch("/channels/{channel_id}", response=ChannelOut)
def update_channel(request: ApiRequest, channel_id: Id, payload: ChannelPatch) -> dict[str, Any]:
    channel = channel_selectors.channel_get(request.auth, channel_id)
    data = payload.dict(exclude_unset=True)
    if "team" in data:
        data["team"] = _team(data["team"])
    channel = channel_actions.channel_update(actor=request.auth, channel=channel, data=data)
    return _channel_out(channel)


@router.delete("/channels/{channel_id}", response={204: None})
def delete_channel(request: ApiRequest, channel_id: Id) -> Status:
    channel = channel_selectors.channel_get(request.auth, channel_id)
    channel_actions.channel_delete(actor=request.auth, channel=channel)
    return Status(204, None)


# --- dead letters (admins) --------------------------------------------------------------


def _dead_out(p: RawPayload) -> dict[str, Any]:
    return {
        "id": p.pk,
        "channel": p.channel_id,
        "received_at": p.received_at,
        "delivery_id": p.delivery_id,
        "status": p.status,
        "attempts": p.attempts,
        "error": p.error,
        "headers": p.headers if isinstance(p.headers, dict) else {},
        "body_preview": p.body_preview(),
    }


@router.get("/dead-letters", response=DeadLetterPage)
def list_dead_letters(request: ApiRequest, page: Query[PageParams]) -> dict[str, Any]:
    qs = channel_selectors.dead_letters(request.auth).defer(None)
    result = fetch_page(
        lambda: keyset_page(qs, ["-received_at", "-id"], page.cursor, page.limit), page.cursor
    )
    return page_out(result, [_dead_out(p) for p in result.items])


@router.post("/dead-letters/{payload_id}/replay", response=DeadLetterOut)
def replay_dead_letter(request: ApiRequest, payload_id: Id) -> dict[str, Any]:
    payload = channel_selectors.payload_get(request.auth, payload_id)
    with transaction.atomic():
        payload = channel_actions.payload_replay(actor=request.auth, payload=payload)
    payload.refresh_from_db()
    return _dead_out(payload)


# --- bulk, merge, hop -------------------------------------------------------------------


class MergeIn(InputSchema):
    other: Id = Field(..., description="The conversation merged into this one (it becomes a tombstone).")


@router.post("/conversations/{conversation_id}/merge", response=ConversationOut)
def merge(request: ApiRequest, conversation_id: Id, payload: MergeIn) -> dict[str, Any]:
    survivor = selectors.conversation_for_edit(request.auth, conversation_id)
    other = selectors.conversation_for_edit(request.auth, payload.other)
    actions.conversation_merge(actor=request.auth, survivor=survivor, other=other)
    return _conversations_out(request.auth, [selectors.conversation_get(request.auth, survivor.pk)])[0]


@router.post("/conversations/{conversation_id}/unmerge", response=ConversationOut)
def unmerge(request: ApiRequest, conversation_id: Id) -> dict[str, Any]:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    actions.conversation_merge_undo(actor=request.auth, conversation=conv)
    return _conversations_out(request.auth, [selectors.conversation_get(request.auth, conv.pk)])[0]


class HopIn(InputSchema):
    mode: Annotated[str, Chars(10)] = Field(..., description="private or email.")
    address: Annotated[str, Chars(320)] = Field("", description="For email: one of the person's emails.")


@router.post("/conversations/{conversation_id}/hop", response={201: MessageOut})
def hop(request: ApiRequest, conversation_id: Id, payload: HopIn) -> Status:
    conv = selectors.conversation_for_edit(request.auth, conversation_id)
    message = actions.conversation_hop(
        actor=request.auth, conversation=conv, mode=payload.mode, address=payload.address
    )
    return Status(201, _message_out(message))


# --- notifications ----------------------------------------------------------------------


class NotificationOut(Schema):
    id: int
    kind: str
    text: str
    conversation: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None


@router.get("/notifications", response=list[NotificationOut])
def list_notifications(request: ApiRequest) -> list[dict[str, Any]]:
    return [
        {
            "id": n.pk,
            "kind": n.kind,
            "text": n.text,
            "conversation": n.conversation_id,
            "created_at": n.created_at,
            "read_at": n.read_at,
        }
        for n in selectors.notifications_of(request.auth)
    ]


@router.post("/notifications/read", response={204: None})
def read_notifications(request: ApiRequest) -> Status:
    from django.utils import timezone

    from rapport.conversations.models import Notification

    Notification.objects.filter(user=request.auth, read_at__isnull=True).update(read_at=timezone.now())
    return Status(204, None)


# --- canned answers ---------------------------------------------------------------------


class CannedOut(Schema):
    id: int
    title: str
    body: str
    team: dict | None
    owner: dict | None
    editable: bool


class CannedIn(InputSchema):
    title: Annotated[str, Chars(100)]
    body: Annotated[str, Chars(5000)]
    team: Id | None = Field(None, description="Share with this team; null keeps it personal.")


def _canned_out(user: User, c: CannedAnswer) -> dict[str, Any]:
    return {
        "id": c.pk,
        "title": c.title,
        "body": c.body,
        "team": team_ref(c.team),
        "owner": user_ref(c.owner),
        "editable": actions.can_edit_canned(user, c),
    }


@router.get("/canned-answers", response=list[CannedOut])
def list_canned(request: ApiRequest) -> list[dict[str, Any]]:
    return [_canned_out(request.auth, c) for c in selectors.canned_visible(request.auth)[:1000]]


@router.post("/canned-answers", response={201: CannedOut})
def create_canned(request: ApiRequest, payload: CannedIn) -> Status:
    canned = actions.canned_save(actor=request.auth, data=payload.dict())
    return Status(201, _canned_out(request.auth, canned))


@router.put("/canned-answers/{canned_id}", response=CannedOut)
def update_canned(request: ApiRequest, canned_id: Id, payload: CannedIn) -> dict[str, Any]:
    canned = selectors.canned_get(request.auth, canned_id)
    return _canned_out(
        request.auth, actions.canned_save(actor=request.auth, canned=canned, data=payload.dict())
    )


@router.delete("/canned-answers/{canned_id}", response={204: None})
def delete_canned(request: ApiRequest, canned_id: Id) -> Status:
    actions.canned_delete(actor=request.auth, canned=selectors.canned_get(request.auth, canned_id))
    return Status(204, None)


@router.get("/conversations/{conversation_id}/canned-answers/{canned_id}", response=dict)
def render_canned(request: ApiRequest, conversation_id: Id, canned_id: Id) -> dict[str, Any]:
    """The answer's text filled in for this conversation (plain text)."""
    conv = selectors.conversation_get(request.auth, conversation_id)
    canned = selectors.canned_get(request.auth, canned_id)
    return {"text": actions.canned_render(canned.body, conversation=conv, agent=request.auth)}


# --- routing rules and SLA policies (admins) --------------------------------------------


class RuleIn(InputSchema):
    name: Annotated[str, Chars(100)] | None = None
    is_active: bool | None = None
    stop: bool | None = None
    channel_kinds: list[Annotated[str, Chars(20)]] | None = None
    words: list[Annotated[str, Chars(100)]] | None = None
    sentiments: list[Annotated[str, Chars(10)]] | None = None
    urgencies: list[Annotated[str, Chars(10)]] | None = None
    business_hours: Annotated[str, Chars(10)] | None = None
    person_vip: bool | None = None
    person_tags: list[Annotated[str, Chars(60)]] | None = None
    organisation_tags: list[Annotated[str, Chars(60)]] | None = None
    organisation_owner: Id | None = None
    assign_mode: Annotated[str, Chars(20)] | None = None
    assign_user: Id | None = None
    assign_team: Id | None = None
    set_priority: Annotated[str, Chars(10)] | None = None
    add_tags: list[Annotated[str, Chars(60)]] | None = None
    auto_reply: Annotated[str, Chars(5000)] | None = None
    escalate: bool | None = None


class RuleOut(Schema):
    id: int
    position: int
    name: str
    is_active: bool
    stop: bool
    channel_kinds: list[str]
    words: list[str]
    sentiments: list[str]
    urgencies: list[str]
    business_hours: str
    person_vip: bool | None
    person_tags: list[str]
    organisation_tags: list[str]
    organisation_owner: int | None
    assign_mode: str
    assign_user: int | None
    assign_team: int | None
    set_priority: str
    add_tags: list[str]
    auto_reply: str
    escalate: bool


class ReorderIn(InputSchema):
    ids: list[Id] = Field(..., max_length=1000, description="Every rule id, in the new order.")


def _admin(user: User) -> None:
    if not user.is_admin:
        from django.http import Http404

        raise Http404("Not found")


def _rule_out(r: RoutingRule) -> dict[str, Any]:
    return {
        **{
            k: getattr(r, k)
            for k in RuleOut.model_fields
            if not k.startswith(("organisation_owner", "assign_u", "assign_t"))
        },
        "organisation_owner": r.organisation_owner_id,
        "assign_user": r.assign_user_id,
        "assign_team": r.assign_team_id,
    }


def _rule_data(payload: RuleIn) -> dict[str, Any]:
    data = payload.dict(exclude_unset=True)
    for key in ("set_priority", "assign_mode", "business_hours", "auto_reply"):
        if key in data and data[key] is None:
            data[key] = ""
    for key in ("is_active", "stop", "escalate"):
        if key in data and data[key] is None:
            raise ActionError("Check the routing rule.", {key: ["true or false."]})
    return data


@router.get("/routing-rules", response=list[RuleOut])
def list_rules(request: ApiRequest) -> list[dict[str, Any]]:
    _admin(request.auth)
    return [_rule_out(r) for r in RoutingRule.objects.all()]


@router.post("/routing-rules", response={201: RuleOut})
def create_rule(request: ApiRequest, payload: RuleIn) -> Status:
    _admin(request.auth)
    return Status(201, _rule_out(actions.routing_rule_save(actor=request.auth, data=_rule_data(payload))))


@router.post("/routing-rules/reorder", response=list[RuleOut])
def reorder_rules(request: ApiRequest, payload: ReorderIn) -> list[dict[str, Any]]:
    _admin(request.auth)
    return [_rule_out(r) for r in actions.routing_rules_reorder(actor=request.auth, ids=payload.ids)]


def _rule(user: User, rule_id: int) -> RoutingRule:
    _admin(user)
    return get_object_or_404(RoutingRule, pk=rule_id)


@router.get("/routing-rules/{rule_id}", response=RuleOut)
def get_rule(request: ApiRequest, rule_id: Id) -> dict[str, Any]:
    return _rule_out(_rule(request.auth, rule_id))


@router.patch("/routing-rules/{rule_id}", response=RuleOut)
def update_rule(request: ApiRequest, rule_id: Id, payload: RuleIn) -> dict[str, Any]:
    rule = _rule(request.auth, rule_id)
    return _rule_out(actions.routing_rule_save(actor=request.auth, rule=rule, data=_rule_data(payload)))


@router.delete("/routing-rules/{rule_id}", response={204: None})
def delete_rule(request: ApiRequest, rule_id: Id) -> Status:
    actions.routing_rule_delete(actor=request.auth, rule=_rule(request.auth, rule_id))
    return Status(204, None)


class SlaIn(InputSchema):
    first_response_minutes: int
    resolution_minutes: int
    warn_before_minutes: int = 15


class SlaOut(Schema):
    priority: str
    first_response_minutes: int
    resolution_minutes: int
    warn_before_minutes: int
    custom: bool


@router.get("/sla-policies", response=list[SlaOut])
def list_sla(request: ApiRequest) -> list[dict[str, Any]]:
    """One row per priority: the policy if set, else the default."""
    from rapport.conversations.routing import sla_minutes

    _admin(request.auth)
    custom = set(SlaPolicy.objects.values_list("priority", flat=True))
    out = []
    for priority in ("urgent", "high", "normal", "low"):
        first, resolution, warn = sla_minutes(priority)
        out.append(
            {
                "priority": priority,
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "warn_before_minutes": warn,
                "custom": priority in custom,
            }
        )
    return out


@router.put("/sla-policies/{priority}", response=SlaOut)
def put_sla(request: ApiRequest, priority: Annotated[str, Chars(10)], payload: SlaIn) -> dict[str, Any]:
    _admin(request.auth)
    policy = SlaPolicy.objects.filter(priority=priority).first()
    p = actions.sla_policy_save(
        actor=request.auth, policy=policy, data={"priority": priority, **payload.dict()}
    )
    return {
        "priority": p.priority,
        "first_response_minutes": p.first_response_minutes,
        "resolution_minutes": p.resolution_minutes,
        "warn_before_minutes": p.warn_before_minutes,
        "custom": True,
    }


@router.delete("/sla-policies/{priority}", response={204: None})
def delete_sla(request: ApiRequest, priority: Annotated[str, Chars(10)]) -> Status:
    _admin(request.auth)
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is not None:
        actions.sla_policy_delete(actor=request.auth, policy=policy)
    return Status(204, None)
