"""Conversations, their messages and calls, and the rules that route them.

Visibility (documented in docs/inbox.md): a conversation is team business, not a personal
record, so it does not use OwnedRecord's owner/visibility. Admins see every conversation;
everyone else sees the conversations of their teams and the ones assigned to them. A
conversation without a team (its channel has none) is seen by admins and its assignee only."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    WAITING = "waiting", "Waiting on customer"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.WAITING)


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


# Keyed by the plain values: rows and forms hold str, and Priority members are str too.
PRIORITY_RANK: dict[str, int] = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class SlaState(models.TextChoices):
    NONE = "none", "No SLA"
    OK = "ok", "On time"
    AT_RISK = "at_risk", "At risk"
    BREACHED = "breached", "Breached"


class Conversation(models.Model):
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.ManyToManyField("people.Tag", blank=True, related_name="conversations")
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    organisation = models.ForeignKey(
        "people.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    deal = models.ForeignKey(
        "sales.Deal", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    channels = models.ManyToManyField("channels.Channel", blank=True, related_name="conversations")
    # The channel replies go out on: the one the customer last wrote from.
    reply_channel = models.ForeignKey(
        "channels.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sentiment = models.CharField(max_length=10, blank=True)
    sentiment_score = models.FloatField(default=0.0)
    urgency = models.CharField(max_length=10, blank=True)
    sla_first_response_due = models.DateTimeField(null=True, blank=True)
    sla_resolution_due = models.DateTimeField(null=True, blank=True)
    sla_state = models.CharField(max_length=10, choices=SlaState.choices, default=SlaState.NONE)
    escalated_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)
    # A merged conversation is a closed tombstone pointing at the one that took its history;
    # undoing the merge (from its audit entry) clears this.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    # Set by an agent's channel hop: "private" answers on the platform's DM side instead of
    # the public thread; `reply_to` is the address the next replies go to (an email
    # identity of the person after "continue by email"). Empty: answer where the customer wrote.
    reply_mode = models.CharField(max_length=10, blank=True, default="")
    reply_to = models.CharField(max_length=320, blank=True, default="")

    class Meta:
        indexes = [
            # Routing counts each agent's open conversations with this one.
            models.Index(
                fields=["assignee", "status", "-last_message_at", "-id"], name="conv_assignee_inbox"
            ),
            # Status after the sort keys: the inbox asks for several statuses at once ("open" is
            # new, open or waiting), which a leading status column can only serve by sorting
            # every matching row; this way the newest-first scan stops after one page and the
            # status is checked in the index.
            models.Index(
                fields=["assignee", "-last_message_at", "-id", "status"], name="conv_assignee_recent"
            ),
            models.Index(fields=["status", "-last_message_at", "-id"], name="conv_status_inbox"),
            models.Index(fields=["team", "-last_message_at", "-id", "status"], name="conv_team_recent"),
            models.Index(fields=["-last_message_at", "-id"], name="conv_all_inbox"),
            models.Index(fields=["person", "status", "-last_message_at"], name="conv_person_open"),
            models.Index(fields=["sla_state", "status"], name="conv_sla"),
            # The plain FK index is all NULLs, so SQLite's statistics say "100,000 rows per
            # value" and the "merged from" lookup on every conversation page scanned the
            # table (13 of 26 ms at 1M messages); the partial index holds only real merges.
            models.Index(
                fields=["merged_into"], condition=models.Q(merged_into__isnull=False), name="conv_merged_into"
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"Conversation {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"
    NOTE = "note", "Internal note"


class Delivery(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    NONE = "none", "Not sent (internal)"


class Message(models.Model):
    # Every index is one more b-tree each ingested message writes (ten made the insert a
    # good part of the ingest worker's time), so none is kept twice: the conversation and
    # channel columns are indexed by msg_conversation and msg_thread, which start with them;
    # author_user (outbound only) and delivery_status (only queued ones are looked for) by
    # partial indexes.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    channel = models.ForeignKey(
        "channels.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
    )
    # The platform's id ("" until an outbound message is sent, and for notes); unique per
    # channel, which is what makes ingest idempotent.
    external_id = models.CharField(max_length=300, blank=True)
    thread_id = models.CharField(max_length=300, blank=True)
    author_kind = models.CharField(max_length=12, blank=True)
    author_value = models.CharField(max_length=320, blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Sanitised with nh3; never the raw HTML.")
    attachments = models.JSONField(default=list, blank=True)
    is_public = models.BooleanField(default=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    delivery_status = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.RECEIVED)
    delivery_error = models.CharField(max_length=500, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    sentiment = models.CharField(max_length=10, blank=True)
    urgency = models.CharField(max_length=10, blank=True)
    raw_payload = models.ForeignKey(
        "channels.RawPayload", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="uniq_channel_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "id"], name="msg_conversation"),
            models.Index(fields=["external_id"], name="msg_external_id"),
            models.Index(fields=["channel", "thread_id"], name="msg_thread"),
            # The sweep looks for queued replies; every inbound message is "received".
            models.Index(
                fields=["delivery_status"], condition=models.Q(delivery_status="queued"), name="msg_queued"
            ),
            models.Index(
                fields=["author_user"], condition=models.Q(author_user__isnull=False), name="msg_author_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} message {self.pk}"


class DeliveryAttempt(models.Model):
    """One row per try to send an outbound message: what happened, and whether it was final."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    permanent = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"attempt on message {self.message_id}: {'ok' if self.ok else self.error}"


class CallDirection(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallOutcome(models.TextChoices):
    ANSWERED = "answered", "Answered"
    NO_ANSWER = "no_answer", "No answer"
    VOICEMAIL = "voicemail", "Voicemail"
    BUSY = "busy", "Busy"
    WRONG_NUMBER = "wrong_number", "Wrong number"


class Call(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="calls")
    # The history entry that shows the call among the messages.
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="call"
    )
    direction = models.CharField(max_length=10, choices=CallDirection.choices)
    number = models.CharField(max_length=40, blank=True)
    duration_s = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=15, choices=CallOutcome.choices)
    notes = models.TextField(blank=True, max_length=20000)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_direction_display()} call {self.number} ({self.get_outcome_display()})"


class AssignMode(models.TextChoices):
    NONE = "", "Do not assign"
    USER = "user", "A person"
    ACCOUNT_OWNER = "account_owner", "The account owner"
    ROUND_ROBIN = "round_robin", "The team, round-robin"
    FEWEST_OPEN = "fewest_open", "The team member with the fewest open conversations"


class BusinessHours(models.TextChoices):
    ANY = "", "Any time"
    INSIDE = "inside", "Inside business hours"
    OUTSIDE = "outside", "Outside business hours"


class RoutingRule(models.Model):
    """Evaluated in `position` order on each new inbound message; every condition set must
    hold (an empty condition matches anything). The first matching rule with
    `stop` set ends the evaluation."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    stop = models.BooleanField(default=True)
    # Conditions
    channel_kinds = models.JSONField(default=list, blank=True)
    words = models.JSONField(default=list, blank=True, help_text="Any of these words (case-insensitive).")
    sentiments = models.JSONField(default=list, blank=True)
    urgencies = models.JSONField(default=list, blank=True)
    business_hours = models.CharField(max_length=10, choices=BusinessHours.choices, blank=True, default="")
    person_vip = models.BooleanField(null=True, blank=True)
    person_tags = models.JSONField(default=list, blank=True)
    organisation_tags = models.JSONField(default=list, blank=True)
    organisation_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Actions
    assign_mode = models.CharField(max_length=20, choices=AssignMode.choices, blank=True, default="")
    assign_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assign_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_priority = models.CharField(max_length=10, choices=Priority.choices, blank=True, default="")
    add_tags = models.JSONField(default=list, blank=True)
    auto_reply = models.TextField(blank=True, max_length=5000)
    escalate = models.BooleanField(default=False)
    rr_last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class SlaPolicy(models.Model):
    """Minutes allowed per priority. Without a row, the defaults in routing.DEFAULT_SLA apply."""

    priority = models.CharField(max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    warn_before_minutes = models.PositiveIntegerField(default=15)

    def __str__(self) -> str:
        return f"SLA {self.priority}"


class Notification(models.Model):
    """An in-app notice to one user (assigned to you, SLA breached, channel disabled)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20)
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notif_unread")]

    def __str__(self) -> str:
        return self.text


class CannedAnswer(models.Model):
    """A reusable reply. Shared with a team when `team` is set, else personal to `owner`.
    The body may hold placeholders ({{first_name}}, {{agent_name}}…) filled in as plain text."""

    title = models.CharField(max_length=100)
    body = models.TextField(max_length=5000)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title", "id"]

    def __str__(self) -> str:
        return self.title
