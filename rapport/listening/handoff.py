"""A mention becomes an owned inbox conversation.

When an active inbox channel exists for the mention's platform (X, Mastodon, Bluesky), the
mention goes through the inbox's own pipeline (`rapport.conversations.ingest.ingest`) as a
public inbound message: identity resolution, threading, scoring, routing rules (account
owner first), SLA and notifications, exactly as if the platform had delivered it, and the
agent can reply on that channel (publicly, or move to a private message or a call, keeping
the conversation).

Without such a channel (RSS, Reddit, or a platform not connected), the conversation is
created here with the inbox's routing and SLA (`rapport.conversations.routing`), holding the
mention as a public inbound message with no channel; the agent answers by following the
link, by private message or by phone.

Idempotent: a mention already converted returns its conversation."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rapport.accounts.models import User
from rapport.core.errors import ActionError
from rapport.listening.models import Mention, MentionState

log = logging.getLogger("rapport.listening")

INBOX_KINDS = ("x", "mastodon", "bluesky")


def mention_to_conversation(*, mention: Mention, actor: User | None = None):  # -> Conversation
    from rapport.conversations.models import Conversation

    if actor is not None and not actor.can_write:
        raise ActionError("Your role is read-only.")
    mention = Mention.objects.select_related("person", "organisation").get(pk=mention.pk)
    if mention.conversation_id:
        existing = Conversation.objects.filter(pk=mention.conversation_id).first()
        if existing is not None:
            return existing
    conversation = _via_channel(mention) or _direct(mention)
    with transaction.atomic():
        Mention.objects.filter(pk=mention.pk).update(
            conversation=conversation,
            state=MentionState.CONVERTED,
            owner=conversation.assignee_id or mention.owner_id,
        )
        if actor is not None:
            from rapport.audit.actions import audit_record
            from rapport.audit.models import AuditEntry

            audit_record(
                actor=actor,
                obj=mention,
                action=AuditEntry.Action.UPDATE,
                summary=f"converted to conversation {conversation.pk}",
            )
    mention.conversation, mention.state = conversation, MentionState.CONVERTED
    return conversation


def _canonical(mention: Mention):
    from rapport.channels.base import Author, CanonicalMessage

    return CanonicalMessage(
        channel_kind=mention.source_kind,
        external_id=mention.external_id,
        author=Author(
            kind=mention.author_kind or "",
            value=mention.author_handle,
            display_name=mention.author_name,
            profile={"followers": mention.author_followers, "url": mention.url},
        ),
        text=_body(mention),
        subject=(mention.title or mention.text.split("\n", 1)[0])[:300],
        sent_at=mention.published_at,
        is_public=True,
    )


def _body(mention: Mention) -> str:
    link = f"\n\n{mention.url}" if mention.url else ""
    return f"{mention.text}{link}"


def _via_channel(mention: Mention):
    if mention.source_kind not in INBOX_KINDS:
        return None
    try:
        from rapport.channels.models import Channel, ChannelStatus
        from rapport.conversations.ingest import ingest
    except ImportError:  # pragma: no cover - the inbox app is part of Rapport
        return None
    channel = (
        Channel.objects.filter(kind=mention.source_kind, status=ChannelStatus.ACTIVE).order_by("id").first()
    )
    if channel is None:
        return None
    return ingest(channel, _canonical(mention)).message.conversation


def _direct(mention: Mention):
    from rapport.conversations import routing
    from rapport.conversations.models import Conversation, Delivery, Direction, Message
    from rapport.conversations.scoring import Score

    now = timezone.now()
    sc = Score(
        sentiment=mention.sentiment, score=mention.score, urgency=mention.urgency, intent=mention.intent
    )
    with transaction.atomic():
        conversation = Conversation.objects.create(
            subject=(mention.title or mention.text.split("\n", 1)[0] or "Mention")[:300],
            person=mention.person,
            organisation=mention.organisation or (mention.person.organisation if mention.person else None),
            created_at=now,
            last_message_at=now,
            last_inbound_at=now,
            sentiment=mention.sentiment,
            sentiment_score=mention.score,
            urgency=mention.urgency,
        )
        Message.objects.create(
            conversation=conversation,
            direction=Direction.INBOUND,
            channel=None,
            external_id=f"listening:{mention.source_kind}:{mention.external_id}"[:300],
            author_kind=(mention.author_kind or "")[:12],
            author_value=mention.author_handle[:320],
            author_name=mention.author_name[:200],
            person=mention.person,
            subject=(mention.title or "")[:300],
            text=_body(mention),
            is_public=True,
            sent_at=mention.published_at,
            received_at=now,
            delivery_status=Delivery.RECEIVED,
            sentiment=mention.sentiment,
            urgency=mention.urgency,
        )
        result = routing.route(
            conversation=conversation,
            channel_kind=mention.source_kind,
            text=mention.text,
            score=sc,
            is_new=True,
            now=now,
        )
        routing.apply_sla(conversation)
        conversation.version = F("version") + 1
        conversation.updated_at = now
        conversation.save()
        conversation.refresh_from_db()
    if result.assigned is not None:
        try:
            from rapport.conversations.notify import notify

            notify(
                users=[result.assigned],
                kind="assigned",
                text=f"A mention needs you: {conversation.subject}"[:300],
                conversation=conversation,
            )
        except Exception:  # a notice failing must not undo the conversion
            log.exception("listening: could not notify about conversation %s", conversation.pk)
    return conversation
