"""Writes on conversations: reply, note (with @mentions), assign, status, priority, call log,
delivery, bulk changes, merge and its undo, channel hops, canned answers, routing rules and
SLA policies.
Keyword-only, atomic, audited; every write starts from a conversation the actor may edit
(see selectors.conversation_for_edit)."""

import datetime as dt
import logging
import re
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Max
from django.http import Http404
from django.utils import timezone

from rapport.accounts.models import User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.channels import registry
from rapport.channels.base import TransportError
from rapport.channels.models import Channel, ChannelKind, ChannelStatus
from rapport.conversations import routing
from rapport.conversations.models import (
    AssignMode,
    BusinessHours,
    Call,
    CallDirection,
    CallOutcome,
    CannedAnswer,
    Conversation,
    Delivery,
    DeliveryAttempt,
    Direction,
    Message,
    Priority,
    RoutingRule,
    SlaPolicy,
    SlaState,
    Status,
)
from rapport.conversations.notify import admins, notify
from rapport.conversations.sanitise import clean_html
from rapport.core.actions import require_write
from rapport.core.errors import ActionError, ConflictError

log = logging.getLogger(__name__)

MAX_REPLY = 20_000
MAX_DELIVERY_ATTEMPTS = 5
BACKOFF_SECONDS = (30, 120, 600, 1800)


def _bump(conversation: Conversation, expected_version: int | None, **changes: object) -> Conversation:
    """Apply `changes` if nobody saved the conversation since `expected_version`."""
    qs = Conversation.objects.filter(pk=conversation.pk)
    if expected_version is not None:
        qs = qs.filter(version=expected_version)
    updated = qs.update(**changes, updated_at=timezone.now(), version=F("version") + 1)
    if not updated:
        current = Conversation.objects.filter(pk=conversation.pk).values_list("version", flat=True).first()
        raise ConflictError(current_version=current)
    conversation.refresh_from_db()
    return conversation


def _text(value: str, name: str = "text") -> str:
    value = (value or "").replace("\x00", "").strip()
    if not value:
        raise ActionError("Write something first.", {name: ["Required."]})
    if len(value) > MAX_REPLY:
        raise ActionError("The message is too long.", {name: [f"At most {MAX_REPLY} characters."]})
    return value


def queue_outbound(
    *, conversation: Conversation, channel: Channel, author: User, text: str, html: str = ""
) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.OUTBOUND,
        channel=channel,
        author_user=author,
        text=text,
        html=clean_html(html),
        delivery_status=Delivery.QUEUED,
        received_at=timezone.now(),
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.received_at)

    def _enqueue() -> None:
        from rapport.conversations.tasks import deliver_message

        try:
            deliver_message.enqueue(message.pk)
        except Exception:
            # The row stays queued; `rapport inbox_sweep` sends it later.
            log.exception("could not enqueue delivery of message %s", message.pk)

    transaction.on_commit(_enqueue)
    return message


@transaction.atomic
def conversation_reply(*, actor: User, conversation: Conversation, text: str) -> Message:
    """Answer the customer on the channel they last wrote from, through its transport."""
    require_write(actor)
    text = _text(text)
    channel = conversation.reply_channel
    if channel is None:
        raise ActionError("This conversation has no channel to reply on; log a call or add a note.")
    if channel.status != ChannelStatus.ACTIVE:
        raise ActionError(
            f"The channel {channel.name} is {channel.get_status_display().lower()}; an admin must fix it first."
        )
    message = queue_outbound(conversation=conversation, channel=channel, author=actor, text=text)
    now = timezone.now()
    changes: dict[str, object] = {"last_message_at": now}
    if conversation.first_response_at is None:
        changes["first_response_at"] = now
        changes["sla_first_response_due"] = None
    if conversation.status == Status.NEW:
        changes["status"] = Status.OPEN
    if conversation.assignee_id is None:
        changes["assignee"] = actor
    _bump(conversation, None, **changes)
    return message


# Django usernames allow letters, digits and @.+-_; a mention stops before a trailing dot or
# dash ("thanks @alice.") and never starts inside a word, so "bob@example.org" is no mention.
MENTION_RE = re.compile(r"(?<![\w@.+-])@([\w.+-]{1,150})")


def mentioned_usernames(text: str) -> list[str]:
    names = (m.group(1).rstrip(".-+") for m in MENTION_RE.finditer(text or ""))
    return list(dict.fromkeys(n for n in names if n))[:50]


SENTIMENT_LABELS = ("negative", "neutral", "positive")


@transaction.atomic
def message_sentiment_correct(*, actor: User, message: Message, label: str) -> Message:
    """An agent's one-click correction of a customer message's sentiment: the message shows
    the corrected label, and the text and label become a training example for the learned
    sentiment backend (rapport.intelligence), as corrections on listening mentions do."""
    require_write(actor)
    if label not in SENTIMENT_LABELS:
        raise ActionError("Unknown sentiment.", {"label": [f"Choose one of {', '.join(SENTIMENT_LABELS)}."]})
    if message.direction != Direction.INBOUND:
        raise ActionError("Only customer messages carry a sentiment.")
    from rapport.intelligence.actions import correction_record

    before = message.sentiment
    Message.objects.filter(pk=message.pk).update(sentiment=label)
    message.sentiment = label
    if message.text.strip():
        correction_record(user=actor, text=message.text, label=label)
    audit_record(
        actor=actor,
        obj=message.conversation,
        action=AuditEntry.Action.UPDATE,
        changes={f"message {message.pk} sentiment": [before, label]},
    )
    return message


def _one_line(value: str, limit: int = 120) -> str:
    return " ".join((value or "").split())[:limit]


@transaction.atomic
def conversation_note(*, actor: User, conversation: Conversation, text: str) -> Message:
    """An internal note: stored in the history, never sent to the customer. Each `@username`
    of a colleague who can see the conversation gets a notice and an email; mentioning
    someone who cannot see it tells them nothing (not even that it exists)."""
    require_write(actor)
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.NOTE,
        author_user=actor,
        text=_text(text),
        delivery_status=Delivery.NONE,
    )
    names = mentioned_usernames(message.text)
    if names:
        from rapport.conversations.selectors import conversations_visible

        candidates = User.objects.filter(username__in=names, is_active=True).exclude(pk=actor.pk)
        targets = [u for u in candidates if conversations_visible(u).filter(pk=conversation.pk).exists()]
        subject = _one_line(conversation.subject) or f"conversation {conversation.pk}"
        notify(
            users=targets,
            actor=actor,
            kind="mention",
            text=f"{actor} mentioned you in a note on: {subject}",
            conversation=conversation,
        )
        mails = [(u.email, f"{actor} mentioned you: {subject}") for u in targets if u.email]

        def _mail() -> None:
            for address, mail_subject in mails:
                try:
                    send_mail(
                        mail_subject,
                        f"{actor} wrote:\n\n{message.text[:2000]}\n\n/inbox/{conversation.pk}/#m{message.pk}",
                        None,
                        [address],
                    )
                except Exception:
                    # The in-app notice exists either way; a mail outage must not undo the note.
                    log.exception("could not mail a mention to %s", address)

        transaction.on_commit(_mail)
    return message


@transaction.atomic
def conversation_assign(
    *, actor: User, conversation: Conversation, assignee: User | None, expected_version: int | None = None
) -> Conversation:
    require_write(actor)
    if assignee is not None and assignee.pk == conversation.assignee_id:
        # Already theirs (the page's form shows the current assignee even when they are
        # outside the actor's teams): nothing changes, nobody is notified again.
        return conversation
    if assignee is not None:
        if not routing.is_agent(assignee):
            raise ActionError("That user cannot take conversations.", {"assignee": ["Not an active agent."]})
        if not (
            actor.is_admin or assignee.pk == actor.pk or set(assignee.team_ids()) & set(actor.team_ids())
        ):
            raise ActionError(
                "You can assign to yourself or to members of your teams.", {"assignee": ["Not allowed."]}
            )
    before = conversation.assignee
    _bump(conversation, expected_version, assignee=assignee)
    audit_record(
        actor=actor,
        obj=conversation,
        action=AuditEntry.Action.UPDATE,
        changes={"assignee": [str(before) if before else None, str(assignee) if assignee else None]},
    )
    if assignee is not None:
        notify(
            users=[assignee],
            actor=actor,
            kind="assigned",
            text=f"{actor} assigned you: {conversation.subject or 'a conversation'}",
            conversation=conversation,
        )
    return conversation


@transaction.atomic
def conversation_set_status(
    *, actor: User, conversation: Conversation, status: str, expected_version: int | None = None
) -> Conversation:
    require_write(actor)
    if status not in Status.values:
        raise ActionError("Unknown status.", {"status": [f"Choose one of {', '.join(Status.values)}."]})
    before = conversation.status
    changes: dict[str, object] = {"status": status}
    if status in (Status.RESOLVED, Status.CLOSED):
        changes["resolved_at"] = conversation.resolved_at or timezone.now()
    else:
        changes["resolved_at"] = None
    _bump(conversation, expected_version, **changes)
    audit_record(
        actor=actor, obj=conversation, action=AuditEntry.Action.UPDATE, changes={"status": [before, status]}
    )
    return conversation


@transaction.atomic
def conversation_set_priority(
    *, actor: User, conversation: Conversation, priority: str, expected_version: int | None = None
) -> Conversation:
    require_write(actor)
    if priority not in Priority.values:
        raise ActionError("Unknown priority.", {"priority": [f"Choose one of {', '.join(Priority.values)}."]})
    before = conversation.priority
    conversation.priority = priority
    routing.apply_sla(conversation)
    _bump(
        conversation,
        expected_version,
        priority=priority,
        sla_first_response_due=conversation.sla_first_response_due,
        sla_resolution_due=conversation.sla_resolution_due,
        sla_state=routing.sla_state_at(conversation, timezone.now())
        if conversation.sla_state != SlaState.NONE
        else SlaState.OK,
    )
    audit_record(
        actor=actor,
        obj=conversation,
        action=AuditEntry.Action.UPDATE,
        changes={"priority": [before, priority]},
    )
    return conversation


@transaction.atomic
def call_log(
    *,
    actor: User,
    conversation: Conversation,
    direction: str,
    number: str = "",
    duration_s: int = 0,
    outcome: str,
    notes: str = "",
) -> Call:
    """A phone call joins the conversation's history like any message."""
    require_write(actor)
    errors: dict[str, list[str]] = {}
    if direction not in CallDirection.values:
        errors["direction"] = ["Inbound or outbound."]
    if outcome not in CallOutcome.values:
        errors["outcome"] = [f"Choose one of {', '.join(CallOutcome.values)}."]
    if not 0 <= int(duration_s) <= 24 * 3600:
        errors["duration_s"] = ["Between 0 and 24 hours."]
    if len(number) > 40:
        errors["number"] = ["At most 40 characters."]
    if len(notes) > 20000:
        errors["notes"] = ["At most 20,000 characters."]
    if errors:
        raise ActionError("Check the call details.", errors)
    minutes, seconds = divmod(int(duration_s), 60)
    summary = (
        f"{CallDirection(direction).label} call{' with ' + number if number else ''}: "
        f"{CallOutcome(outcome).label.lower()}, {minutes} min {seconds:02d} s"
    )
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.NOTE,
        author_user=actor,
        text=summary + (f"\n\n{notes}" if notes else ""),
        delivery_status=Delivery.NONE,
    )
    call = Call.objects.create(
        conversation=conversation,
        message=message,
        direction=direction,
        number=number,
        duration_s=int(duration_s),
        outcome=outcome,
        notes=notes,
        logged_by=actor,
    )
    changes: dict[str, object] = {"last_message_at": timezone.now()}
    if outcome == CallOutcome.ANSWERED and conversation.first_response_at is None:
        changes["first_response_at"] = timezone.now()
        changes["sla_first_response_due"] = None
    _bump(conversation, None, **changes)
    return call


# --- delivery ---------------------------------------------------------------------------


def message_deliver(*, message_id: int) -> str:
    """Send one queued outbound message through its channel's transport. Idempotent: a
    message already sent (or no longer queued) is left alone. Transient failures are retried
    with backoff; a permanent one fails the message, disables the channel and tells admins."""
    claimed = (
        Message.objects.filter(pk=message_id, direction=Direction.OUTBOUND, delivery_status=Delivery.QUEUED)
        .select_related("channel", "conversation")
        .first()
    )
    if claimed is None or claimed.channel is None:
        return "skipped"
    channel = claimed.channel
    if channel.status != ChannelStatus.ACTIVE:
        Message.objects.filter(pk=message_id).update(
            delivery_status=Delivery.FAILED, delivery_error=f"Channel {channel.name} is not active."
        )
        return "failed"
    if channel.is_demo:
        # Demo channels stand for accounts that are not connected: say so instead of
        # pretending the customer got the reply, and leave the channel as it is.
        Message.objects.filter(pk=message_id).update(
            delivery_status=Delivery.FAILED,
            delivery_error=f"{channel.name} is a demo channel, not connected to a real account: nothing was sent.",
        )
        return "failed"
    attempt = claimed.delivery_attempts + 1
    try:
        external_id = registry.transport(channel.kind).send(channel, claimed)
    except TransportError as exc:
        return _delivery_failed(
            claimed,
            channel,
            attempt,
            str(exc),
            exc.permanent,
            retry_after=getattr(exc, "retry_after", 0) or 0,
        )
    except registry.ConnectorMissing as exc:
        return _delivery_failed(claimed, channel, attempt, str(exc), True)
    except Exception as exc:
        log.exception("transport crashed on message %s", message_id)
        return _delivery_failed(claimed, channel, attempt, f"{type(exc).__name__}: {exc}", False)
    with transaction.atomic():
        DeliveryAttempt.objects.create(message=claimed, ok=True)
        Message.objects.filter(pk=message_id).update(
            delivery_status=Delivery.SENT,
            delivery_error="",
            delivery_attempts=attempt,
            external_id=(external_id or "")[:300],
            sent_at=timezone.now(),
        )
    return "sent"


def _delivery_failed(
    message: Message, channel: Channel, attempt: int, error: str, permanent: bool, retry_after: float = 0
) -> str:
    error = error[:500]
    final = permanent or attempt >= MAX_DELIVERY_ATTEMPTS
    with transaction.atomic():
        DeliveryAttempt.objects.create(message=message, ok=False, permanent=permanent, error=error)
        Message.objects.filter(pk=message.pk).update(
            delivery_attempts=attempt,
            delivery_error=error,
            delivery_status=Delivery.FAILED if final else Delivery.QUEUED,
        )
        if permanent:
            Channel.objects.filter(pk=channel.pk).update(
                status=ChannelStatus.ERROR, last_error=error, last_error_at=timezone.now()
            )
            notify(
                users=admins(),
                kind="channel_error",
                conversation=message.conversation,
                text=f"Channel {channel.name} was disabled: {error}",
            )
        if final and message.conversation.assignee_id:
            notify(
                users=[message.conversation.assignee],
                kind="delivery_failed",
                conversation=message.conversation,
                text=f"A reply could not be delivered: {error}",
            )
    if not final:
        # The platform's Retry-After (rate limits) wins over our own backoff when it is longer.
        backoff = BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)]
        _retry_later(message.pk, int(max(backoff, min(float(retry_after), 24 * 3600))))
        return "retrying"
    return "failed"


def _retry_later(message_id: int, seconds: int) -> None:
    from rapport.conversations.tasks import deliver_message

    try:
        backend = deliver_message.get_backend()
        if backend.supports_defer:
            deliver_message.using(run_after=timezone.now() + dt.timedelta(seconds=seconds)).enqueue(
                message_id
            )
        # Backends that cannot defer (immediate) leave it queued for `rapport inbox_sweep`.
    except Exception:
        log.exception("could not schedule a retry for message %s", message_id)


# --- bulk changes -----------------------------------------------------------------------

BULK_ACTIONS = ("assign", "close", "status", "priority", "tag")
MAX_BULK = 200


def _tag(name: str):  # noqa: ANN202 - people.Tag
    from rapport.people.models import Tag

    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        raise ActionError("A tag is 1 to 60 characters.", {"value": ["1 to 60 characters."]})
    tag = Tag.objects.filter(name__iexact=name).first()
    return tag or Tag.objects.create(name=name)


def conversations_bulk(*, actor: User, ids: list[Any], action: str, value: str = "") -> dict[str, Any]:
    """Apply one change to many conversations in one request. Each row is checked on its own
    (one the actor may not change counts as skipped, exactly like a missing one, so the answer
    never tells whether it exists) and changed in its own transaction."""
    from rapport.conversations.selectors import conversation_for_edit

    require_write(actor)
    if action not in BULK_ACTIONS:
        raise ActionError("Unknown bulk action.", {"action": [f"Choose one of {', '.join(BULK_ACTIONS)}."]})
    clean_ids = list(dict.fromkeys(str(i) for i in ids if str(i).isdigit()))
    if not clean_ids:
        raise ActionError("Select at least one conversation.", {"ids": ["Required."]})
    if len(clean_ids) > MAX_BULK:
        raise ActionError(f"At most {MAX_BULK} conversations at once.", {"ids": ["Too many."]})
    assignee = None
    if action == "assign" and value:
        assignee = User.objects.filter(pk=int(value) if str(value).isdigit() else 0).first()
        if assignee is None:
            raise ActionError("Unknown user.", {"value": ["No such user."]})
    if action == "status" and value not in Status.values:
        raise ActionError("Unknown status.", {"value": [f"Choose one of {', '.join(Status.values)}."]})
    if action == "priority" and value not in Priority.values:
        raise ActionError("Unknown priority.", {"value": [f"Choose one of {', '.join(Priority.values)}."]})
    tag = _tag(value) if action == "tag" else None
    done: list[int] = []
    skipped: list[dict[str, Any]] = []
    for raw in clean_ids:
        try:
            conv = conversation_for_edit(actor, raw)
        except Http404:
            skipped.append({"id": int(raw), "reason": "Not found."})
            continue
        try:
            with transaction.atomic():
                if action == "assign":
                    conversation_assign(actor=actor, conversation=conv, assignee=assignee)
                elif action == "close":
                    conversation_set_status(actor=actor, conversation=conv, status=Status.CLOSED)
                elif action == "status":
                    conversation_set_status(actor=actor, conversation=conv, status=value)
                elif action == "priority":
                    conversation_set_priority(actor=actor, conversation=conv, priority=value)
                elif tag is not None and not conv.tags.filter(pk=tag.pk).exists():
                    conv.tags.add(tag)
                    _bump(conv, None)
                    audit_record(
                        actor=actor,
                        obj=conv,
                        action=AuditEntry.Action.UPDATE,
                        changes={"tags": {"add": tag.name}},
                    )
        except (ActionError, ConflictError) as exc:
            skipped.append({"id": conv.pk, "reason": getattr(exc, "message", "Changed meanwhile.")})
            continue
        done.append(conv.pk)
    return {"done": done, "skipped": skipped}


# --- merge and undo ---------------------------------------------------------------------


def _root_person_id(person) -> int | None:  # noqa: ANN001
    seen: set[int] = set()
    while person is not None and person.merged_into_id and person.pk not in seen:
        seen.add(person.pk)
        person = person.merged_into
    return person.pk if person is not None else None


@transaction.atomic
def conversation_merge(*, actor: User, survivor: Conversation, other: Conversation) -> AuditEntry:
    """Move `other`'s messages, calls, channels and tags into `survivor`; `other` becomes a
    closed tombstone pointing at it. Only conversations of the same person (or of people
    merged since) merge. The audit entry lists every moved row, so the merge can be undone."""
    require_write(actor)
    if survivor.pk == other.pk:
        raise ActionError("Choose another conversation.", {"other": ["The same conversation."]})
    locked = {
        c.pk: c for c in Conversation.objects.select_for_update().filter(pk__in=[survivor.pk, other.pk])
    }
    survivor, other = locked[survivor.pk], locked[other.pk]
    if survivor.merged_into_id or other.merged_into_id:
        raise ActionError("A merged conversation cannot be merged again; undo its merge first.")
    a = _root_person_id(survivor.person) if survivor.person_id else None
    b = _root_person_id(other.person) if other.person_id else None
    if a is not None and b is not None and a != b:
        raise ActionError(
            "These conversations are with different people; merge the people first.",
            {"other": ["Another person's conversation."]},
        )
    message_ids = list(other.messages.order_by("id").values_list("id", flat=True))
    call_ids = list(other.calls.values_list("id", flat=True))
    survivor_channels = set(survivor.channels.values_list("id", flat=True))
    channels_added = [c for c in other.channels.values_list("id", flat=True) if c not in survivor_channels]
    survivor_tags = set(survivor.tags.values_list("id", flat=True))
    tags_added = [t for t in other.tags.values_list("id", flat=True) if t not in survivor_tags]
    Message.objects.filter(pk__in=message_ids).update(conversation=survivor)
    Call.objects.filter(pk__in=call_ids).update(conversation=survivor)
    survivor.channels.add(*channels_added)
    survivor.tags.add(*tags_added)
    changes: dict[str, object] = {"last_message_at": max(survivor.last_message_at, other.last_message_at)}
    if survivor.person_id is None and other.person_id is not None:
        changes["person_id"] = other.person_id
    if other.first_response_at and (
        survivor.first_response_at is None or other.first_response_at < survivor.first_response_at
    ):
        changes["first_response_at"] = other.first_response_at
    if other.status in (Status.NEW, Status.OPEN, Status.WAITING) and not survivor.is_open:
        changes["status"] = Status.OPEN
        changes["resolved_at"] = None
    survivor_before = {"status": survivor.status, "person_id": survivor.person_id}
    _bump(survivor, None, **changes)
    before = {
        "status": other.status,
        "resolved_at": other.resolved_at.isoformat() if other.resolved_at else None,
    }
    _bump(
        other,
        None,
        status=Status.CLOSED,
        merged_into=survivor,
        resolved_at=other.resolved_at or timezone.now(),
    )
    audit_record(
        actor=actor,
        obj=survivor,
        action=AuditEntry.Action.UPDATE,
        summary=f"Took over the history of conversation {other.pk}",
    )
    return audit_record(
        actor=actor,
        obj=other,
        action=AuditEntry.Action.MERGE,
        summary=f"Merged into conversation {survivor.pk}",
        changes={
            "merged_into": survivor.pk,
            "messages": message_ids,
            "calls": call_ids,
            "channels_added": channels_added,
            "tags_added": tags_added,
            "before": before,
            "survivor_before": survivor_before,
        },
    )


def merge_entry(conversation: Conversation) -> AuditEntry | None:
    """The audit entry of the merge that made `conversation` a tombstone (None if it is not one)."""
    if not conversation.merged_into_id:
        return None
    return (
        AuditEntry.objects.filter(
            model=Conversation._meta.label_lower,
            object_id=conversation.pk,
            action=AuditEntry.Action.MERGE,
            changes__merged_into=conversation.merged_into_id,
        )
        .order_by("-at", "-id")
        .first()
    )


@transaction.atomic
def conversation_merge_undo(*, actor: User, conversation: Conversation) -> Conversation:
    """Give a merged conversation back its messages, calls, channels and status. Messages that
    arrived on the survivor after the merge stay there."""
    from rapport.conversations.selectors import can_edit_conversation

    require_write(actor)
    entry = merge_entry(conversation)
    if entry is None or conversation.merged_into_id is None:
        raise ActionError("This conversation is not merged into another.")
    survivor = Conversation.objects.select_for_update().filter(pk=conversation.merged_into_id).first()
    if survivor is None or not can_edit_conversation(actor, survivor):
        raise ActionError("You cannot change the conversation it was merged into.")
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    ints = lambda key: [int(x) for x in changes.get(key) or [] if isinstance(x, int)]  # noqa: E731
    message_ids, call_ids = ints("messages"), ints("calls")
    Message.objects.filter(pk__in=message_ids, conversation=survivor).update(conversation=conversation)
    Call.objects.filter(pk__in=call_ids, conversation=survivor).update(conversation=conversation)
    still_used = set(survivor.messages.exclude(channel=None).values_list("channel_id", flat=True))
    survivor.channels.remove(*[c for c in ints("channels_added") if c not in still_used])
    survivor.tags.remove(*ints("tags_added"))
    last = survivor.messages.aggregate(last=Max("received_at"))["last"]
    survivor_changes: dict[str, object] = {"last_message_at": last or survivor.created_at}
    survivor_before = changes.get("survivor_before") or {}
    if "person_id" in survivor_before and survivor_before["person_id"] is None:
        survivor_changes["person_id"] = None
    _bump(survivor, None, **survivor_changes)
    before = changes.get("before") or {}
    status = before.get("status") if before.get("status") in Status.values else Status.OPEN
    resolved = before.get("resolved_at")
    _bump(
        conversation,
        None,
        status=status,
        merged_into=None,
        resolved_at=dt.datetime.fromisoformat(resolved) if isinstance(resolved, str) else None,
    )
    audit_record(
        actor=actor,
        obj=conversation,
        action=AuditEntry.Action.UPDATE,
        summary=f"Undid the merge into conversation {survivor.pk}",
        changes={"undo_of": entry.pk, "merged_into": [survivor.pk, None]},
    )
    return conversation


# --- channel hops -----------------------------------------------------------------------

# Platforms whose connector answers either in public (reply to the post) or in private (DM)
# depending on the thread; "continue as private message" moves the reply to the DM side.
DM_KINDS = {ChannelKind.X, ChannelKind.MASTODON, ChannelKind.FACEBOOK, ChannelKind.INSTAGRAM}
HOP_MODES = ("private", "email")


def _where(conversation: Conversation) -> str:
    channel = conversation.reply_channel
    if channel is None:
        return "no channel"
    kind = channel.get_kind_display()
    if conversation.reply_mode == "private":
        return f"{kind} DM"
    if channel.kind == ChannelKind.EMAIL:
        return "email"
    last = conversation.messages.filter(direction=Direction.INBOUND, channel=channel).order_by("-id").first()
    if channel.kind in DM_KINDS:
        return f"{kind} {'mention' if last is None or last.is_public else 'DM'}"
    return kind


@transaction.atomic
def conversation_hop(
    *, actor: User, conversation: Conversation, mode: str, address: str = "", channel: Channel | None = None
) -> Message:
    """Move where the next replies go, keeping one conversation and one history. The hop is
    written into the history ("moved from X mention to X DM") like any other entry."""
    from rapport.people.identities import IdentityError, normalise
    from rapport.people.models import Identity, IdentityKind

    require_write(actor)
    if mode not in HOP_MODES:
        raise ActionError("Unknown move.", {"mode": [f"Choose one of {', '.join(HOP_MODES)}."]})
    origin = _where(conversation)
    changes: dict[str, object] = {}
    if mode == "private":
        current = conversation.reply_channel
        if current is None or current.kind not in DM_KINDS:
            raise ActionError("This channel has no private messages to continue on.")
        if conversation.reply_mode == "private":
            raise ActionError("The conversation is private already.")
        changes = {"reply_mode": "private", "reply_to": ""}
        target = f"{current.get_kind_display()} DM"
    else:
        try:
            value = normalise(IdentityKind.EMAIL, address)
        except IdentityError:
            raise ActionError(
                "Choose one of the person's email addresses.", {"address": ["Not an email address."]}
            )
        if (
            conversation.person_id is None
            or not Identity.objects.filter(
                person_id=conversation.person_id, kind=IdentityKind.EMAIL, value=value
            ).exists()
        ):
            raise ActionError("Choose one of the person's email addresses.", {"address": ["Not theirs."]})
        if channel is None:
            candidates = Channel.objects.filter(kind=ChannelKind.EMAIL, status=ChannelStatus.ACTIVE)
            channel = (
                candidates.filter(team_id=conversation.team_id).first() if conversation.team_id else None
            ) or candidates.filter(team__isnull=True).first()
        if channel is None or channel.kind != ChannelKind.EMAIL or channel.status != ChannelStatus.ACTIVE:
            raise ActionError("There is no active email channel for this team; an admin must add one.")
        changes = {"reply_channel": channel, "reply_mode": "email", "reply_to": value}
        conversation.channels.add(channel)
        target = f"email to {value}"
    _bump(conversation, None, **changes)
    text = f"Moved from {origin} to {target}."
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.NOTE,
        author_user=actor,
        author_kind="hop",
        text=text,
        delivery_status=Delivery.NONE,
    )
    audit_record(actor=actor, obj=conversation, action=AuditEntry.Action.UPDATE, summary=text)
    return message


# --- canned answers ---------------------------------------------------------------------

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]{1,30})\s*\}\}")
PLACEHOLDERS = (
    "first_name",
    "last_name",
    "full_name",
    "organisation",
    "agent_name",
    "agent_first_name",
    "subject",
)


def canned_render(body: str, *, conversation: Conversation, agent: User) -> str:
    """Fill the placeholders as plain text: no template engine (so a body cannot run template
    tags), and the result is escaped wherever it is shown, like any reply. Names of a person
    the agent cannot see are left empty."""
    from rapport.people.selectors import people_visible

    person = conversation.person
    if person is not None and not people_visible(agent).filter(pk=person.pk).exists():
        person = None
    values = {
        "first_name": person.first_name if person else "",
        "last_name": person.last_name if person else "",
        "full_name": person.full_name if person else "",
        "organisation": str(person.organisation) if person and person.organisation_id else "",
        "agent_name": agent.get_full_name() or agent.username,
        "agent_first_name": agent.first_name or agent.username,
        "subject": conversation.subject,
    }
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), body or "")


def _canned_clean(actor: User, data: dict[str, Any]) -> dict[str, Any]:
    from rapport.accounts.models import Team

    errors: dict[str, list[str]] = {}
    title = " ".join(str(data.get("title") or "").split())
    body = str(data.get("body") or "").replace("\x00", "").strip()
    if not 0 < len(title) <= 100:
        errors["title"] = ["1 to 100 characters."]
    elif title.startswith("/"):
        errors["title"] = ["Do not start with “/” (it is what opens the picker)."]
    if not 0 < len(body) <= 5000:
        errors["body"] = ["1 to 5,000 characters."]
    unknown = sorted({m.group(1) for m in PLACEHOLDER_RE.finditer(body)} - set(PLACEHOLDERS))
    if unknown and "body" not in errors:
        errors["body"] = [
            f"Unknown placeholder {', '.join('{{' + u + '}}' for u in unknown)}; use "
            + ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
            + "."
        ]
    team = None
    team_id = data.get("team")
    if team_id not in (None, ""):
        team = Team.objects.filter(pk=int(team_id) if str(team_id).isdigit() else 0).first()
        if team is None or not (actor.is_admin or team.pk in actor.team_ids()):
            errors["team"] = ["Share with one of your teams, or keep it personal."]
    if errors:
        raise ActionError("Check the canned answer.", errors)
    return {"title": title, "body": body, "team": team}


def can_edit_canned(actor: User, canned: CannedAnswer) -> bool:
    return actor.can_write and (actor.is_admin or canned.owner_id == actor.pk)


@transaction.atomic
def canned_save(*, actor: User, canned: CannedAnswer | None = None, data: dict[str, Any]) -> CannedAnswer:
    require_write(actor)
    if canned is not None and not can_edit_canned(actor, canned):
        raise ActionError("Only its author or an admin can change this canned answer.")
    clean = _canned_clean(actor, data)
    created = canned is None
    if canned is None:
        canned = CannedAnswer(owner=actor)
    for key, value in clean.items():
        setattr(canned, key, value)
    canned.updated_at = timezone.now()
    canned.save()
    audit_record(
        actor=actor,
        obj=canned,
        action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
        summary=f"Canned answer {canned.title}",
    )
    return canned


@transaction.atomic
def canned_delete(*, actor: User, canned: CannedAnswer) -> None:
    require_write(actor)
    if not can_edit_canned(actor, canned):
        raise ActionError("Only its author or an admin can delete this canned answer.")
    audit_record(
        actor=actor, obj=canned, action=AuditEntry.Action.DELETE, summary=f"Canned answer {canned.title}"
    )
    canned.delete()


# --- routing rules and SLA policies (admins) --------------------------------------------

SENTIMENTS = ("negative", "neutral", "positive")
URGENCIES = ("low", "normal", "high")
RULE_FIELDS = {
    "name",
    "is_active",
    "stop",
    "channel_kinds",
    "words",
    "sentiments",
    "urgencies",
    "business_hours",
    "person_vip",
    "person_tags",
    "organisation_tags",
    "organisation_owner",
    "assign_mode",
    "assign_user",
    "assign_team",
    "set_priority",
    "add_tags",
    "auto_reply",
    "escalate",
}


def _require_admin(actor: User) -> None:
    if not (actor.is_active and actor.is_admin):
        raise ActionError("Only administrators can change routing and SLAs.")


def _str_list(
    value: Any,
    name: str,
    errors: dict[str, list[str]],
    *,
    choices: tuple[str, ...] | list[str] | None = None,
    limit: int = 60,
    most: int = 50,
) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v for v in (x.strip() for x in value.split(",")) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[name] = ["A list of words."]
        return []
    items = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if len(items) > most:
        errors[name] = [f"At most {most} entries."]
    elif any(len(v) > limit for v in items):
        errors[name] = [f"Each at most {limit} characters."]
    elif choices is not None and set(items) - set(choices):
        errors[name] = [f"Choose among {', '.join(choices)}."]
    return items


def _user_ref(value: Any, name: str, errors: dict[str, list[str]]) -> User | None:
    if value in (None, ""):
        return None
    user = User.objects.filter(pk=int(value) if str(value).isdigit() else 0).first()
    if not routing.is_agent(user):
        errors[name] = ["Choose an active agent."]
        return None
    return user


def rule_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Check every field of a routing rule and say which are wrong (field → messages)."""
    from rapport.accounts.models import Team

    unknown = set(data) - RULE_FIELDS
    if unknown:
        raise ActionError(
            f"Unknown fields: {', '.join(sorted(unknown))}", {k: ["Unknown field."] for k in unknown}
        )
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if "name" in data:
        name = " ".join(str(data["name"] or "").split())
        if not 0 < len(name) <= 100:
            errors["name"] = ["1 to 100 characters."]
        out["name"] = name
    for key in ("is_active", "stop", "escalate"):
        if key in data:
            if not isinstance(data[key], bool):
                errors[key] = ["true or false."]
            out[key] = bool(data[key])
    if "channel_kinds" in data:
        out["channel_kinds"] = _str_list(
            data["channel_kinds"], "channel_kinds", errors, choices=ChannelKind.values
        )
    if "words" in data:
        out["words"] = _str_list(data["words"], "words", errors, limit=100)
    if "sentiments" in data:
        out["sentiments"] = _str_list(data["sentiments"], "sentiments", errors, choices=SENTIMENTS)
    if "urgencies" in data:
        out["urgencies"] = _str_list(data["urgencies"], "urgencies", errors, choices=URGENCIES)
    for key in ("person_tags", "organisation_tags", "add_tags"):
        if key in data:
            out[key] = _str_list(data[key], key, errors)
    if "business_hours" in data:
        value = data["business_hours"] or ""
        if value not in BusinessHours.values:
            errors["business_hours"] = ["Any time, inside or outside."]
        out["business_hours"] = value
    if "person_vip" in data:
        if data["person_vip"] not in (None, True, False):
            errors["person_vip"] = ["true, false or null (any)."]
        out["person_vip"] = data["person_vip"]
    if "organisation_owner" in data:
        out["organisation_owner"] = _user_ref(data["organisation_owner"], "organisation_owner", errors)
    if "assign_user" in data:
        out["assign_user"] = _user_ref(data["assign_user"], "assign_user", errors)
    if "assign_team" in data:
        team_id = data["assign_team"]
        team = None
        if team_id not in (None, ""):
            team = Team.objects.filter(pk=int(team_id) if str(team_id).isdigit() else 0).first()
            if team is None:
                errors["assign_team"] = ["No such team."]
        out["assign_team"] = team
    if "assign_mode" in data:
        value = data["assign_mode"] or ""
        if value not in AssignMode.values:
            errors["assign_mode"] = [
                f"Choose one of {', '.join(v for v in AssignMode.values if v)} or nothing."
            ]
        out["assign_mode"] = value
    if "set_priority" in data:
        value = data["set_priority"] or ""
        if value and value not in Priority.values:
            errors["set_priority"] = [f"Choose one of {', '.join(Priority.values)} or nothing."]
        out["set_priority"] = value
    if "auto_reply" in data:
        value = str(data["auto_reply"] or "").replace("\x00", "").strip()
        if len(value) > 5000:
            errors["auto_reply"] = ["At most 5,000 characters."]
        out["auto_reply"] = value
    if errors:
        raise ActionError("Check the routing rule.", errors)
    return out


def _rule_consistent(rule: RoutingRule) -> None:
    errors: dict[str, list[str]] = {}
    if rule.assign_mode == AssignMode.USER and rule.assign_user_id is None:
        errors["assign_user"] = ["Choose whom to assign to."]
    if rule.assign_mode in (AssignMode.ROUND_ROBIN, AssignMode.FEWEST_OPEN) and rule.assign_team_id is None:
        errors["assign_team"] = ["Choose the team to share conversations among."]
    if errors:
        raise ActionError("Check the routing rule.", errors)


@transaction.atomic
def routing_rule_save(*, actor: User, rule: RoutingRule | None = None, data: dict[str, Any]) -> RoutingRule:
    _require_admin(actor)
    clean = rule_clean(data)
    created = rule is None
    if rule is None:
        if "name" not in clean:
            raise ActionError("Check the routing rule.", {"name": ["Required."]})
        last = RoutingRule.objects.aggregate(m=Max("position"))["m"]
        rule = RoutingRule(position=0 if last is None else last + 1)
    for key, value in clean.items():
        setattr(rule, key, value)
    _rule_consistent(rule)
    rule.save()
    audit_record(
        actor=actor,
        obj=rule,
        action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
        summary=f"Routing rule {rule.name}",
        changes={k: str(v) if not isinstance(v, list | bool | None) else v for k, v in clean.items()},
    )
    return rule


@transaction.atomic
def routing_rules_reorder(*, actor: User, ids: list[int]) -> list[RoutingRule]:
    """Set the evaluation order: `ids` must name every rule exactly once."""
    _require_admin(actor)
    rules = {r.pk: r for r in RoutingRule.objects.select_for_update()}
    if sorted(ids) != sorted(rules) or len(set(ids)) != len(ids):
        raise ActionError("List every rule exactly once.", {"ids": ["Every rule id, once each."]})
    for position, pk in enumerate(ids):
        RoutingRule.objects.filter(pk=pk).update(position=position)
    audit_record(
        actor=actor,
        obj=rules[ids[0]] if ids else RoutingRule(pk=0),
        action=AuditEntry.Action.UPDATE,
        summary="Reordered routing rules",
        changes={"order": ids},
    )
    return list(RoutingRule.objects.all())


def routing_rule_move(*, actor: User, rule: RoutingRule, up: bool) -> None:
    ids = list(RoutingRule.objects.values_list("pk", flat=True))
    i = ids.index(rule.pk)
    j = i - 1 if up else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        routing_rules_reorder(actor=actor, ids=ids)


@transaction.atomic
def routing_rule_delete(*, actor: User, rule: RoutingRule) -> None:
    _require_admin(actor)
    audit_record(actor=actor, obj=rule, action=AuditEntry.Action.DELETE, summary=f"Routing rule {rule.name}")
    rule.delete()


def _minutes(value: Any, name: str, errors: dict[str, list[str]], *, low: int = 1) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        errors[name] = ["A whole number of minutes."]
        return 0
    if not low <= number <= 60 * 24 * 365:
        errors[name] = [f"Between {low} and 525,600 minutes."]
    return number


@transaction.atomic
def sla_policy_save(*, actor: User, data: dict[str, Any], policy: SlaPolicy | None = None) -> SlaPolicy:
    _require_admin(actor)
    errors: dict[str, list[str]] = {}
    priority = data.get("priority", policy.priority if policy else "")
    if priority not in Priority.values:
        errors["priority"] = [f"Choose one of {', '.join(Priority.values)}."]
    elif SlaPolicy.objects.filter(priority=priority).exclude(pk__in=[policy.pk] if policy else []).exists():
        errors["priority"] = ["There is a policy for this priority already; edit it."]
    first = _minutes(data.get("first_response_minutes"), "first_response_minutes", errors)
    resolution = _minutes(data.get("resolution_minutes"), "resolution_minutes", errors)
    warn = _minutes(data.get("warn_before_minutes", 15), "warn_before_minutes", errors, low=0)
    if not errors and resolution < first:
        errors["resolution_minutes"] = ["At least the first-response time."]
    if not errors and warn >= first:
        errors["warn_before_minutes"] = ["Less than the first-response time."]
    if errors:
        raise ActionError("Check the SLA policy.", errors)
    created = policy is None
    policy = policy or SlaPolicy()
    policy.priority, policy.first_response_minutes = priority, first
    policy.resolution_minutes, policy.warn_before_minutes = resolution, warn
    policy.save()
    audit_record(
        actor=actor,
        obj=policy,
        action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
        summary=f"SLA {priority}: {first} / {resolution} min",
    )
    return policy


@transaction.atomic
def sla_policy_delete(*, actor: User, policy: SlaPolicy) -> None:
    _require_admin(actor)
    audit_record(
        actor=actor,
        obj=policy,
        action=AuditEntry.Action.DELETE,
        summary=f"SLA {policy.priority} (defaults apply)",
    )
    policy.delete()
