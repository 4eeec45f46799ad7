"""The one ingest pipeline every connector feeds.

    webhook/poller → verify → RawPayload (durable) → task → normalise → store (idempotent)
    → resolve identity → thread → score → route → notify

Exactly once: the RawPayload is committed before the platform is acknowledged, and a
message is unique per (channel, external id), so processing a payload twice (a worker killed
after storing but before marking the payload processed, or an admin replay) finds the
message already there and adds nothing. Everything a message causes (person, conversation,
routing, notices, auto-reply row) is written in the same transaction as the message, so a
crash leaves either all of it or none of it."""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.channels import registry
from rapport.channels.base import CanonicalMessage, NormaliseError, content_hash_id
from rapport.channels.models import Channel, PayloadStatus, RawPayload
from rapport.conversations import routing
from rapport.conversations.models import (
    OPEN_STATUSES,
    Conversation,
    Delivery,
    Direction,
    Message,
    Status,
)
from rapport.conversations.notify import notify
from rapport.conversations.sanitise import clean_html, html_to_text
from rapport.conversations.scoring import Score, score
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.people.identities import IdentityError, normalise
from rapport.people.models import IdentityKind, Person, Source

log = logging.getLogger(__name__)

THREAD_WINDOW = dt.timedelta(days=7)
MAX_ATTEMPTS = 5
MAX_TEXT = 100_000


def system_user() -> User:
    """The actor of everything the pipeline writes. It has no usable password and cannot
    log in; it is an admin so it may file new people under any channel's team."""
    user = User.objects.filter(username=routing.BOT_USERNAME).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = User(username=routing.BOT_USERNAME, first_name="Rapport", last_name="bot", role=Role.ADMIN)
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        return User.objects.get(username=routing.BOT_USERNAME)


# --- identity -------------------------------------------------------------------------


def resolve_person(channel: Channel, cm: CanonicalMessage) -> Person | None:
    """Known email/handle/phone → that person; otherwise a new person flagged for review
    (the duplicates screen suggests merges). None when the identity is not usable."""
    from rapport.people.actions import person_create
    from rapport.people.selectors import person_by_identity

    kind = cm.author.kind
    if kind not in IdentityKind.values or not cm.author.value:
        return None
    try:
        value = normalise(kind, cm.author.value)
    except IdentityError:
        return None
    person = person_by_identity(kind=kind, value=value)
    if person is not None:
        return person
    first, _, last = (cm.author.display_name or "").strip().partition(" ")
    profile = {k: str(v)[:500] for k, v in list((cm.author.profile or {}).items())[:20]}
    try:
        return person_create(
            actor=system_user(),
            first_name=first[:100],
            last_name=last[:100],
            identities=[(kind, value)],
            team=channel.team,
            visibility=Visibility.TEAM if channel.team_id else Visibility.EVERYONE,
            source=Source.INBOX,
            needs_review=True,
            custom={"inbox_profile": profile} if profile else None,
        )
    except ActionError:
        log.warning("could not create a person for %s identity on channel %s", kind, channel.pk)
        return None


# --- threading ------------------------------------------------------------------------


def find_conversation(
    channel: Channel, cm: CanonicalMessage, person: Person | None, now: dt.datetime
) -> Conversation | None:
    keys = cm.reply_keys()
    if keys:
        earlier = (
            Message.objects.filter(external_id__in=keys, channel__kind=channel.kind)
            .select_related("conversation")
            .order_by("-id")
            .first()
        )
        if earlier is not None and earlier.conversation.status != Status.CLOSED:
            return earlier.conversation
    if cm.thread_id:
        earlier = (
            Message.objects.filter(channel=channel, thread_id=cm.thread_id)
            .select_related("conversation")
            .order_by("-id")
            .first()
        )
        if earlier is not None and earlier.conversation.status != Status.CLOSED:
            return earlier.conversation
    if person is not None:
        return (
            Conversation.objects.filter(
                person=person,
                channels=channel,
                status__in=OPEN_STATUSES,
                last_message_at__gte=now - THREAD_WINDOW,
            )
            .order_by("-last_message_at", "-id")
            .first()
        )
    return None


# --- store ----------------------------------------------------------------------------


@dataclass
class Ingested:
    message: Message
    created: bool


def _external_id(cm: CanonicalMessage) -> str:
    ext = (cm.external_id or "").strip()
    if not ext:
        return content_hash_id(
            cm.channel_kind, cm.author.kind, cm.author.value, str(cm.sent_at), cm.text, cm.html
        )
    return ext if len(ext) <= 300 else content_hash_id(ext)


def ingest(
    channel: Channel,
    cm: CanonicalMessage,
    *,
    payload: RawPayload | None = None,
    now: dt.datetime | None = None,
) -> Ingested:
    """Store one canonical message and everything it causes; idempotent per external id."""
    external_id = _external_id(cm)
    existing = Message.objects.filter(channel=channel, external_id=external_id).first()
    if existing is not None:
        return Ingested(existing, False)
    now = now or timezone.now()
    html = clean_html(cm.html)
    text = (cm.text or "")[:MAX_TEXT].replace("\x00", "") or html_to_text(html)[:MAX_TEXT]
    # Scored outside the transaction: analysis may be slow or touch its own tables.
    sc = score(text)
    try:
        with transaction.atomic():
            return Ingested(_store(channel, cm, external_id, text, html, sc, payload, now), True)
    except IntegrityError:
        # A concurrent worker stored the same message first: theirs is the one.
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing is None:
            raise
        return Ingested(existing, False)


def _store(
    channel: Channel,
    cm: CanonicalMessage,
    external_id: str,
    text: str,
    html: str,
    sc: Score,
    payload: RawPayload | None,
    now: dt.datetime,
) -> Message:
    person = resolve_person(channel, cm)
    conversation = find_conversation(channel, cm, person, now)
    is_new = conversation is None
    if conversation is None:
        subject = (
            (cm.subject or text or "").strip().splitlines()[0][:300] if (cm.subject or text).strip() else ""
        )
        conversation = Conversation.objects.create(
            subject=subject,
            team=channel.team,
            person=person,
            organisation=person.organisation if person else None,
            reply_channel=channel,
            created_at=now,
            last_message_at=now,
        )
    sent_at = cm.sent_at if cm.sent_at and timezone.is_aware(cm.sent_at) else None
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=channel,
        external_id=external_id,
        thread_id=(cm.thread_id or "")[:300],
        author_kind=cm.author.kind[:12],
        author_value=(cm.author.value or "")[:320],
        author_name=(cm.author.display_name or "")[:200],
        person=person,
        subject=(cm.subject or "")[:300],
        text=text,
        html=html,
        attachments=[a.as_dict() for a in cm.attachments][:100],
        is_public=cm.is_public,
        sent_at=sent_at,
        received_at=now,
        delivery_status=Delivery.RECEIVED,
        sentiment=sc.sentiment,
        urgency=sc.urgency,
        raw_payload=payload,
    )
    conversation.channels.add(channel)
    conversation.reply_channel = channel
    conversation.last_message_at = max(conversation.last_message_at, now)
    conversation.last_inbound_at = now
    conversation.sentiment, conversation.sentiment_score, conversation.urgency = (
        sc.sentiment,
        sc.score,
        sc.urgency,
    )
    if person is not None and conversation.person_id is None:
        conversation.person = person
    if conversation.status in (Status.WAITING, Status.RESOLVED):
        conversation.status = Status.OPEN
        conversation.resolved_at = None
    before_assignee = conversation.assignee_id
    result = routing.route(
        conversation=conversation,
        channel_kind=channel.kind,
        text=f"{cm.subject} {text}",
        score=sc,
        is_new=is_new,
        now=now,
    )
    if is_new:
        routing.apply_sla(conversation)
    conversation.updated_at = now
    conversation.version = F("version") + 1
    conversation.save()
    conversation.refresh_from_db(fields=["version"])
    if conversation.assignee_id and conversation.assignee_id != before_assignee:
        notify(
            users=[conversation.assignee],
            kind="assigned",
            text=f"New conversation for you: {conversation.subject or 'no subject'}",
            conversation=conversation,
        )
    elif not is_new and conversation.assignee_id:
        notify(
            users=[conversation.assignee],
            kind="message",
            text=f"New message in {conversation.subject or 'a conversation'}",
            conversation=conversation,
        )
    if result.auto_reply and channel.is_active:
        from rapport.conversations.actions import queue_outbound

        queue_outbound(
            conversation=conversation, channel=channel, author=system_user(), text=result.auto_reply
        )
    return message


# --- raw payloads ---------------------------------------------------------------------


def mark_dead(payload: RawPayload, reason: str) -> None:
    RawPayload.objects.filter(pk=payload.pk).update(status=PayloadStatus.DEAD, error=reason[:2000])
    payload.status, payload.error = PayloadStatus.DEAD, reason[:2000]


def _mark_processed(payload: RawPayload) -> None:
    RawPayload.objects.filter(pk=payload.pk).update(
        status=PayloadStatus.PROCESSED, processed_at=timezone.now(), error=""
    )
    payload.status = PayloadStatus.PROCESSED


def process_payload(payload_id: int) -> list[Ingested]:
    """Normalise and store one raw payload. Safe to call any number of times."""
    payload = RawPayload.objects.select_related("channel", "channel__team").filter(pk=payload_id).first()
    if payload is None or payload.status == PayloadStatus.PROCESSED:
        return []
    RawPayload.objects.filter(pk=payload.pk).update(attempts=F("attempts") + 1)
    try:
        messages = registry.inbound(payload.channel.kind).normalise(payload.channel, payload)
    except NormaliseError as exc:
        mark_dead(payload, f"Cannot read this payload: {exc}")
        return []
    except registry.ConnectorMissing as exc:
        mark_dead(payload, str(exc))
        return []
    except Exception as exc:
        # A normaliser bug: parsing is pure, so retrying cannot help; keep it for a replay
        # once the connector is fixed.
        log.exception("normaliser crashed on payload %s", payload.pk)
        mark_dead(payload, f"The connector failed on this payload ({type(exc).__name__}: {str(exc)[:300]}).")
        return []
    results = []
    try:
        for cm in messages:
            results.append(ingest(payload.channel, cm, payload=payload))
    except Exception as exc:
        # The database or a bug: leave the payload "received" for the next attempt, and give
        # up into the dead-letter list after MAX_ATTEMPTS so it is looked at.
        attempts = RawPayload.objects.filter(pk=payload.pk).values_list("attempts", flat=True).first() or 0
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        if attempts >= MAX_ATTEMPTS:
            mark_dead(payload, f"Failed {attempts} times; last error: {reason}")
            return results
        RawPayload.objects.filter(pk=payload.pk).update(error=reason)
        raise
    _mark_processed(payload)
    return results


def process_pending(*, older_than: dt.timedelta = dt.timedelta(seconds=0), limit: int = 1000) -> int:
    """Recovery sweep: payloads stored but never processed (a worker was killed, the queue
    lost a job). Processing is idempotent, so sweeping a payload a worker is handling too
    does no harm."""
    cutoff = timezone.now() - older_than
    ids = list(
        RawPayload.objects.filter(status=PayloadStatus.RECEIVED, received_at__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    done = 0
    for pid in ids:
        try:
            process_payload(pid)
            done += 1
        except Exception:
            log.exception("payload %s failed again; left for the next sweep", pid)
    return done
