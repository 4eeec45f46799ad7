from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who changed what, when, from what to what. Written by actions, never by views."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        MERGE = "merge"
        IMPORT = "import"

    model = models.CharField(max_length=50)
    object_id = models.BigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=10, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True)
    summary = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["model", "object_id", "-at"])]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.model}#{self.object_id}"
