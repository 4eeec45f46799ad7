"""Configured connectors (channels) and the raw payloads they receive.

A RawPayload is written before the sender is acknowledged: it is the durable record that
makes "store first, acknowledge after" true. Processing it is idempotent, so it can be
replayed any number of times (after a crash, or by an admin from the dead-letter list)."""

from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from rapport.channels import crypto


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    EMAIL = "email", "Email"
    CHAT = "chat", "Web chat"
    X = "x", "X / Twitter"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    FACEBOOK = "facebook", "Facebook"
    INSTAGRAM = "instagram", "Instagram"
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    PHONE = "phone", "Phone"


class ChannelStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"
    ERROR = "error", "Error"


class Channel(models.Model):
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    # Conversations arriving here belong to this team unless a routing rule says otherwise.
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="channels"
    )
    credentials_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=10, choices=ChannelStatus.choices, default=ChannelStatus.ACTIVE)
    last_error = models.TextField(blank=True, max_length=2000)
    last_error_at = models.DateTimeField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    @property
    def is_demo(self) -> bool:
        """A channel made by `rapport demo`: it has no real account behind it, so pollers skip
        it and replies on it are marked as not sent."""
        return bool((self.settings or {}).get("demo"))

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def credentials(self) -> dict[str, Any]:
        return crypto.decrypt(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_encrypted = crypto.encrypt(value or {})

    @property
    def is_active(self) -> bool:
        return self.status == ChannelStatus.ACTIVE


class PayloadStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    DEAD = "dead", "Dead letter"


class RawPayload(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="payloads")
    received_at = models.DateTimeField(default=timezone.now)
    # Only the headers a connector needs to re-verify or debug; never cookies or auth.
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    # The platform's delivery id (or a digest of the body): the same delivery stored twice
    # is one row, whatever the platform's retry policy.
    delivery_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=PayloadStatus.choices, default=PayloadStatus.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Indexed only where set (a replay is rare; every webhook would write a NULL entry).
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "delivery_id"],
                condition=~models.Q(delivery_id=""),
                name="uniq_channel_delivery",
            )
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="payload_status"),
            models.Index(
                fields=["replayed_by"],
                condition=models.Q(replayed_by__isnull=False),
                name="payload_replayed_by",
            ),
        ]

    def __str__(self) -> str:
        return f"payload {self.pk} on {self.channel_id} ({self.status})"

    @property
    def body_bytes(self) -> bytes:
        return bytes(self.body or b"")

    def body_preview(self, limit: int = 4000) -> str:
        return self.body_bytes[:limit].decode("utf-8", errors="replace")


class MediaState(models.TextChoices):
    PENDING = "pending", "Waiting to be fetched"
    STORED = "stored", "Stored"
    QUARANTINED = "quarantined", "Quarantined"
    FAILED = "failed", "Failed"


def media_upload_to(instance: "StoredMedia", filename: str) -> str:
    """A random name under the month: never the sender's name, so no `../`, no extension
    tricks and no guessing another attachment's path."""
    import uuid

    now = timezone.now()
    return f"attachments/{now:%Y/%m}/{uuid.uuid4().hex}"


class StoredMedia(models.Model):
    """The bytes of one entry of `Message.attachments` (same `index`), fetched through the
    channel's media API (or cut from the MIME message) by rapport.channels.media.

    A quarantined file is kept when it was read whole (active content, an archive bomb) and
    is only ever served as a download; an attachment over the size cap is not kept at all.
    Either way the row says why, so nothing disappears silently."""

    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="media")
    index = models.PositiveSmallIntegerField()
    filename = models.CharField(max_length=255)  # sanitised; shown and offered as the download name
    declared_type = models.CharField(max_length=100, blank=True)  # what the platform said
    content_type = models.CharField(max_length=100, blank=True)  # sniffed from the bytes
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=media_upload_to, max_length=200, blank=True)
    state = models.CharField(max_length=12, choices=MediaState.choices, default=MediaState.PENDING)
    reason = models.CharField(max_length=500, blank=True)  # why it is quarantined
    error = models.CharField(max_length=500, blank=True)  # last fetch error
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["message_id", "index"]
        constraints = [models.UniqueConstraint(fields=["message", "index"], name="uniq_media_message_index")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(state="pending"), name="media_pending_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.state})"

    @property
    def inline_ok(self) -> bool:
        """Shown as an image in the page: only raster types recognised by their magic bytes."""
        from rapport.channels.media import INLINE_TYPES

        return self.state == MediaState.STORED and bool(self.file) and self.content_type in INLINE_TYPES

    @property
    def downloadable(self) -> bool:
        return self.state in (MediaState.STORED, MediaState.QUARANTINED) and bool(self.file)


@receiver(post_delete, sender=StoredMedia)
def _delete_media_file(sender: type[StoredMedia], instance: StoredMedia, **kwargs: Any) -> None:
    """A deleted message (or conversation) takes its files with it, once the delete commits."""
    name, storage = instance.file.name, instance.file.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name))
