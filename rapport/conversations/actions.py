"""Writes on conversations: reply, note, assign, status, priority, call log, delivery.
Keyword-only, atomic, audited; every write starts from a conversation the actor may edit
(see selectors.conversation_for_edit)."""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rapport.accounts.models import User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.channels import registry
from rapport.channels.base import TransportError
from rapport.channels.models import Channel, ChannelStatus
from rapport.conversations import routing
from rapport.conversations.models import (
    Call,
    CallDirection,
    CallOutcome,
    Conversation,
    Delivery,
    DeliveryAttempt,
    Direction,
    Message,
    Priority,
    SlaState,
    Status,
)
from rapport.conversations.notify import admins, notify
from rapport.conversations.sanitise import clean_html
from rapport.core.errors import ActionError, ConflictError

log = logging.getLogger(__name__)

MAX_REPLY = 20_000
MAX_DELIVERY_ATTEMPTS = 5
BACKOFF_SECONDS = (30, 120, 600, 1800)


def _require_write(actor: User) -> None:
    if not actor.can_write:
        raise ActionError("Your role is read-only.")


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
    _require_write(actor)
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


@transaction.atomic
def conversation_note(*, actor: User, conversation: Conversation, text: str) -> Message:
    """An internal note: stored in the history, never sent to the customer."""
    _require_write(actor)
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.NOTE,
        author_user=actor,
        text=_text(text),
        delivery_status=Delivery.NONE,
    )
    return message


@transaction.atomic
def conversation_assign(
    *, actor: User, conversation: Conversation, assignee: User | None, expected_version: int | None = None
) -> Conversation:
    _require_write(actor)
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
    _require_write(actor)
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
    _require_write(actor)
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
    _require_write(actor)
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
    attempt = claimed.delivery_attempts + 1
    try:
        external_id = registry.transport(channel.kind).send(channel, claimed)
    except TransportError as exc:
        return _delivery_failed(claimed, channel, attempt, str(exc), exc.permanent)
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


def _delivery_failed(message: Message, channel: Channel, attempt: int, error: str, permanent: bool) -> str:
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
        _retry_later(message.pk, BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
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
