"""Import jobs: one uploaded file, its column mapping, a dry run and the import itself.

The uploaded file lives under MEDIA_ROOT/imports/ under a random name; the user's file name
is kept for display only. Counters are written when a phase ends; live progress while a phase
runs comes from a small progress file (see rapport.imports.progress), because the import's
own transaction holds the database write lock until it commits."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from rapport.core.models import Visibility


class ImportKind(models.TextChoices):
    PEOPLE = "people", "People"
    ORGANISATIONS = "organisations", "Organisations"
    DEALS = "deals", "Deals"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Waiting for the column mapping"
    ANALYSING = "analysing", "Checking the file (dry run)"
    ANALYSED = "analysed", "Checked; ready to import"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed; nothing was imported"


class OnDuplicate(models.TextChoices):
    SKIP = "skip", "Skip the row"
    MERGE = "merge", "Merge into the existing record (fill empty fields, add identities and tags)"
    CREATE = "create", "Create anyway (marked for review)"


class ImportJob(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    # Random name under MEDIA_ROOT/imports/; never derived from the user's file name.
    stored_name = models.CharField(max_length=64, unique=True)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    file_format = models.CharField(max_length=4)  # csv | xlsx
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=1, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    headers = models.JSONField(default=list, blank=True)
    samples = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=list, blank=True)
    on_duplicate = models.CharField(max_length=6, choices=OnDuplicate.choices, default=OnDuplicate.SKIP)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.EVERYONE)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Dry run over the whole file.
    preview = models.JSONField(default=list, blank=True)
    dry_new = models.PositiveIntegerField(default=0)
    dry_duplicate = models.PositiveIntegerField(default=0)
    dry_invalid = models.PositiveIntegerField(default=0)
    analysed_at = models.DateTimeField(null=True, blank=True)
    # The import.
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    has_error_report = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="importjob_owner")]

    def __str__(self) -> str:
        return f"Import #{self.pk} of {self.kind} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (ImportStatus.ANALYSING, ImportStatus.QUEUED, ImportStatus.RUNNING)

    @property
    def can_change_mapping(self) -> bool:
        return self.status in (ImportStatus.UPLOADED, ImportStatus.ANALYSED)
