"""Inbox API: conversations (list, detail with messages, reply, note, assign, status,
priority), channels (admins) and the dead-letter list with replay (admins)."""

import datetime as dt
from typing import Annotated, Any

from django.db import transaction
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
from rapport.conversations.models import Conversation, Message
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

    from rapport.people.selectors import people_visible

    prefetch_related_objects(convs, "channels", "tags")
    ids = {c.person_id for c in convs if c.person_id}
    visible_people = (
        set(people_visible(user).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    )
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
