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
