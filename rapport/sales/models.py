"""Deals in pipelines, products and the installed base (orders and subscriptions)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from rapport.core.models import OwnedRecord
from rapport.core.text import fold


class Pipeline(models.Model):
    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(default=10, help_text="Chance of winning, 0–100 %.")
    is_won = models.BooleanField(default=False)
    is_lost = models.BooleanField(default=False)

    class Meta:
        ordering = ["pipeline_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="uniq_stage_name"),
            models.CheckConstraint(
                condition=models.Q(probability__lte=100), name="stage_probability_max_100"
            ),
        ]

    @property
    def deal_status(self) -> str:
        """The status a deal in this stage has (a deal's status always follows its stage)."""
        return "won" if self.is_won else "lost" if self.is_lost else "open"

    def __str__(self) -> str:
        return f"{self.name} ({self.probability} %)"


class DealStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class Deal(OwnedRecord):
    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, db_index=True, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    status = models.CharField(max_length=5, choices=DealStatus.choices, default=DealStatus.OPEN)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="EUR")
    expected_close = models.DateField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    organisation = models.ForeignKey(
        "people.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    description = models.TextField(blank=True, max_length=20000)
    lost_reason = models.CharField(max_length=200, blank=True)
    stage_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["stage", "status", "-amount"], name="deal_board"),
            # Covers the forecast's query (open deals by close date, with what it sums and the
            # access columns): at 65,000 open deals in six months, reading the rows themselves
            # took 74 ms, the index alone 15 ms.
            models.Index(
                fields=["status", "expected_close", "owner", "team", "visibility", "stage", "amount"],
                name="deal_forecast_cover",
            ),
            models.Index(fields=["name_key", "id"], name="deal_sort"),
            # The list sorted by amount (biggest first is how people look for deals): without
            # it, every visible deal was sorted for each page (100 ms at 100,000 deals).
            models.Index(fields=["amount", "id"], name="deal_amount_sort"),
            # Covering index for the board's per-stage count/sum under the visibility filter:
            # an index-only scan (75 ms → 10 ms over 100,000 deals on SQLite).
            models.Index(
                fields=["pipeline", "stage", "visibility", "team", "owner", "amount"], name="deal_board_sums"
            ),
        ]

    def save(self, *args, **kwargs):
        self.refresh_keys()
        super().save(*args, **kwargs)

    def refresh_keys(self) -> None:
        self.name_key = fold(self.name)[:200]

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.stage.probability / 100).quantize(Decimal("0.01"))

    def __str__(self) -> str:
        return self.name


class DealStageTotal(models.Model):
    """Count and sum of deals per (pipeline, stage, owner, team, visibility), kept by database
    triggers on sales_deal (migration 0003), so the board's column totals read a few hundred
    rows instead of every deal — and no write path (forms, API, imports, bulk SQL) can skip
    it. Plain integer columns named like OwnedRecord's so `visibility_q` applies unchanged;
    0 stands for "no team" so the unique key holds on both databases."""

    pipeline_id = models.IntegerField()
    stage_id = models.IntegerField()
    owner_id = models.IntegerField()
    team_id = models.IntegerField()
    visibility = models.CharField(max_length=10)
    n = models.IntegerField(default=0)
    total = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline_id", "stage_id", "owner_id", "team_id", "visibility"],
                name="deal_stage_total_key",
            )
        ]

    def __str__(self) -> str:
        return f"stage {self.stage_id}: {self.n} deals, {self.total}"


class DealParticipant(models.Model):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="participants")
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="deal_roles")
    role = models.CharField(max_length=60, blank=True, help_text="Decision maker, champion, user…")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deal", "person"], name="uniq_deal_person")]

    def __str__(self) -> str:
        return f"{self.person_id} on deal {self.deal_id} ({self.role})"


class Product(models.Model):
    name = models.CharField(max_length=200)
    sku = models.CharField(max_length=60, unique=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="EUR")
    is_subscription = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """What an organisation bought or subscribes to: the installed base."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    organisation = models.ForeignKey("people.Organisation", on_delete=models.CASCADE, related_name="orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="EUR")
    started_on = models.DateField(default=timezone.localdate)
    ends_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_on", "-id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id} for {self.organisation_id}"
