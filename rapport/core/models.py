"""Shared building blocks: every customer record has an owner, a team and a visibility."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (owner only)"
    TEAM = "team", "Team"
    EVERYONE = "everyone", "Everyone"


class OwnedRecord(models.Model):
    """Abstract base for records under record-level access control.

    `version` increases on every save through an action; an edit form carries the version it
    was loaded with, so a second person's stale save is detected instead of overwriting."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.EVERYONE)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """Last time a background worker ran a task, per backend: the admin's "is the queue
    alive?" answer, and a real task for testing both queue backends end to end."""

    backend = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.backend} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
