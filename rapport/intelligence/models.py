"""Agents' sentiment corrections and the learned models trained from them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SentimentLabel(models.TextChoices):
    NEGATIVE = "negative", "Negative"
    NEUTRAL = "neutral", "Neutral"
    POSITIVE = "positive", "Positive"


class Correction(models.Model):
    """One agent's one-click "this is actually negative": the training data of the learned model.

    The text is copied, not only referenced, so a correction keeps teaching after the message
    it came from is deleted or edited."""

    text = models.TextField()
    label = models.CharField(max_length=10, choices=SentimentLabel.choices)
    predicted = models.CharField(max_length=10, blank=True, help_text="What the analyser had said.")
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the source.")
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.label}: {self.text[:60]}"


class SentimentModel(models.Model):
    """A learned sentiment model for this installation, with the evidence for using it.

    `active` only when its cross-validated macro recall beat the offline rules on the same
    examples; at most one model is active."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    examples = models.PositiveIntegerField()
    folds = models.PositiveSmallIntegerField(default=5)
    cv_macro_recall = models.FloatField()
    baseline_macro_recall = models.FloatField(help_text="The offline rules on the same examples.")
    active = models.BooleanField(default=False)
    blob = models.BinaryField(help_text="Weights and vocabulary as a NumPy .npz (no pickle).")
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(
        max_length=10,
        choices=[("manual", "Manual"), ("automatic", "Automatic")],
        default="manual",
        help_text="manual: `rapport sentiment train`; automatic: retrained after new corrections.",
    )
    corrections = models.PositiveIntegerField(default=0, help_text="Agents' corrections among the examples.")
    note = models.CharField(max_length=300, blank=True, help_text="Why it is or is not active.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="one_active_sentiment_model"
            )
        ]

    def __str__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"model {self.pk} ({self.examples} examples, CV {self.cv_macro_recall:.3f}, {state})"
