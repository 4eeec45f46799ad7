"""Everything that happened with a customer, on one timeline: notes, calls, meetings, tasks
and emails. An activity hangs off a person, an organisation and/or a deal; logging one on a
person also files it under their organisation, so the account timeline is complete."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from rapport.core.models import OwnedRecord


class ActivityKind(models.TextChoices):
    NOTE = "note", "Note"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    TASK = "task", "Task"
    EMAIL = "email", "Email"


class CallDirection(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallOutcome(models.TextChoices):
    CONNECTED = "connected", "Connected"
    VOICEMAIL = "voicemail", "Left voicemail"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    WRONG_NUMBER = "wrong_number", "Wrong number"


class Activity(OwnedRecord):
    kind = models.CharField(max_length=10, choices=ActivityKind.choices)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True, max_length=100000)
    occurred_at = models.DateTimeField(default=timezone.now)
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    organisation = models.ForeignKey(
        "people.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    deal = models.ForeignKey(
        "sales.Deal", null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    # Calls
    call_direction = models.CharField(max_length=10, choices=CallDirection.choices, blank=True)
    call_duration_s = models.PositiveIntegerField(null=True, blank=True)
    call_outcome = models.CharField(max_length=15, choices=CallOutcome.choices, blank=True)
    phone_number = models.CharField(max_length=40, blank=True)
    # Meetings
    ends_at = models.DateTimeField(null=True, blank=True)
    location = models.CharField(max_length=200, blank=True)
    # Tasks
    due_at = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    done_at = models.DateTimeField(null=True, blank=True)
    # Emails
    email_from = models.CharField(max_length=320, blank=True)
    email_to = models.CharField(max_length=2000, blank=True)
    message_id = models.CharField(max_length=500, blank=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["person", "-occurred_at"], name="activity_person_tl"),
            models.Index(fields=["organisation", "-occurred_at"], name="activity_org_tl"),
            models.Index(fields=["deal", "-occurred_at"], name="activity_deal_tl"),
            models.Index(fields=["assignee", "done_at", "due_at"], name="activity_tasks"),
            models.Index(fields=["-occurred_at", "-id"], name="activity_recent"),
            # The open-tasks list: few rows among millions of activities. Walking the recent
            # index to find them took 300 ms at 1M activities. Queries must name the same
            # condition with literals (see selectors.activity_rows) for SQLite to use it.
            models.Index(
                fields=["-occurred_at", "-id"],
                condition=models.Q(kind="task", done_at__isnull=True),
                name="activity_open_tasks",
            ),
        ]
        verbose_name_plural = "activities"

    @property
    def is_open_task(self) -> bool:
        return self.kind == ActivityKind.TASK and self.done_at is None

    def __str__(self) -> str:
        return self.subject or self.get_kind_display()
