"""Listening: what we look for (queries), where (sources), what we found (mentions), and what
we do about it (alert rules and alerts).

Access: mentions are public posts and are shared with everyone in the organisation; queries
and alert rules are owned records (owner / team / visibility, see rapport.core.access);
an alert is visible to its owner, to whoever can see its rule, and to admins."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from rapport.core.models import OwnedRecord


class SourceKind(models.TextChoices):
    RSS = "rss", "RSS / Atom feed"
    MASTODON = "mastodon", "Mastodon"
    X = "x", "X recent search"
    X_STREAM = "x_stream", "X filtered stream"
    BLUESKY = "bluesky", "Bluesky"
    REDDIT = "reddit", "Reddit"


# What a mention's `source_kind` can be: tweets from the filtered stream are X mentions like
# those from recent search (one dedup key, one platform in queries and dashboards).
MENTION_KINDS = [k for k in SourceKind.values if k != SourceKind.X_STREAM]


class QueryKind(models.TextChoices):
    BRAND = "brand", "Brand"
    PRODUCT = "product", "Product"
    COMPETITOR = "competitor", "Competitor"
    HASHTAG = "hashtag", "Hashtag"


class ListeningQuery(OwnedRecord):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=QueryKind.choices, default=QueryKind.BRAND)
    text = models.CharField(
        max_length=2000, help_text='Boolean query: AND, OR, NOT, "phrases", ( ), lang:xx.'
    )
    # Source kinds this query applies to; empty means every source.
    sources = models.JSONField(default=list, blank=True)
    # Language codes (ISO 639-1); empty means any language.
    languages = models.JSONField(default=list, blank=True)
    is_competitor = models.BooleanField(default=False, help_text="Counted against us in share of voice.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "listening queries"

    def __str__(self) -> str:
        return self.name


class ListeningSource(models.Model):
    """A place we poll. `config` holds the kind's settings (feed URL, instance, terms);
    secrets (X bearer token) are kept encrypted in `credentials_encrypted`."""

    kind = models.CharField(max_length=12, choices=SourceKind.choices)
    name = models.CharField(max_length=100)
    config = models.JSONField(default=dict, blank=True)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, max_length=2000)
    last_error_at = models.DateTimeField(null=True, blank=True)
    fetched_total = models.PositiveBigIntegerField(default=0)
    stored_total = models.PositiveBigIntegerField(default=0)
    bad_items_total = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def credentials(self) -> dict:
        from rapport.channels import crypto

        return crypto.decrypt(self.credentials_encrypted) if self.credentials_encrypted else {}

    @credentials.setter
    def credentials(self, value: dict) -> None:
        from rapport.channels import crypto

        self.credentials_encrypted = crypto.encrypt(value or {})


class SourceCursor(models.Model):
    """Where a source's stream stopped, per key (a feed URL, a hashtag, a search term), so the
    next poll asks only for what is new; and when we may ask again after a 429."""

    source = models.ForeignKey(ListeningSource, on_delete=models.CASCADE, related_name="cursors")
    key = models.CharField(max_length=300)
    since_id = models.CharField(max_length=100, blank=True)
    max_id = models.CharField(max_length=100, blank=True)
    etag = models.CharField(max_length=300, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Rate limited until then.")
    failures = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="uniq_source_cursor")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.key}"


class Sentiment(models.TextChoices):
    NEGATIVE = "negative", "Negative"
    NEUTRAL = "neutral", "Neutral"
    POSITIVE = "positive", "Positive"


class MentionState(models.TextChoices):
    NEW = "new", "New"
    REVIEWED = "reviewed", "Reviewed"
    CONVERTED = "converted", "Converted"
    IGNORED = "ignored", "Ignored"


class Mention(models.Model):
    source_kind = models.CharField(max_length=12, choices=SourceKind.choices)
    source = models.ForeignKey(
        ListeningSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="mentions"
    )
    external_id = models.CharField(max_length=300)
    url = models.CharField(max_length=1000, blank=True)
    author_kind = models.CharField(
        max_length=12, blank=True, help_text="An IdentityKind, when the platform has one."
    )
    author_handle = models.CharField(max_length=320, blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    author_followers = models.PositiveBigIntegerField(default=0)
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="mentions"
    )
    organisation = models.ForeignKey(
        "people.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="mentions"
    )
    title = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True)
    language = models.CharField(max_length=10, blank=True)
    published_at = models.DateTimeField()
    fetched_at = models.DateTimeField(default=timezone.now)
    reach = models.PositiveBigIntegerField(default=0)
    likes = models.PositiveBigIntegerField(default=0)
    shares = models.PositiveBigIntegerField(default=0)
    replies = models.PositiveBigIntegerField(default=0)
    engagement = models.PositiveBigIntegerField(default=0)
    links = models.JSONField(default=list, blank=True)
    queries = models.ManyToManyField(ListeningQuery, through="MentionMatch", related_name="mentions")
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, default=Sentiment.NEUTRAL)
    score = models.FloatField(default=0.0)
    intent = models.CharField(max_length=20, default="other")
    urgency = models.CharField(max_length=10, default="normal")
    sentiment_corrected = models.BooleanField(default=False)
    keywords = models.JSONField(default=list, blank=True)
    hashtags = models.JSONField(default=list, blank=True)
    influence = models.FloatField(default=0.0, help_text="0–100.")
    state = models.CharField(max_length=10, choices=MentionState.choices, default=MentionState.NEW)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_kind", "external_id"], name="uniq_mention_source_ext")
        ]
        indexes = [
            models.Index(fields=["published_at", "id"], name="mention_time"),
            models.Index(fields=["sentiment", "published_at", "id"], name="mention_sentiment_time"),
            models.Index(fields=["source_kind", "published_at", "id"], name="mention_source_time"),
            models.Index(fields=["state", "published_at", "id"], name="mention_state_time"),
            models.Index(fields=["intent", "published_at", "id"], name="mention_intent_time"),
            models.Index(fields=["author_handle", "published_at"], name="mention_author_time"),
            models.Index(fields=["person", "published_at"], name="mention_person_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source_kind}:{self.external_id}"


class MentionMatch(models.Model):
    """Which query matched which mention, with the mention's time and sentiment copied so
    per-query lists and charts read one index range."""

    mention = models.ForeignKey(Mention, on_delete=models.CASCADE, related_name="matches")
    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="matches")
    published_at = models.DateTimeField()
    sentiment = models.CharField(max_length=10, default=Sentiment.NEUTRAL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mention", "query"], name="uniq_mention_query")]
        indexes = [
            models.Index(fields=["query", "published_at", "mention"], name="match_query_time"),
            models.Index(fields=["query", "sentiment", "published_at"], name="match_query_sentiment"),
        ]

    def __str__(self) -> str:
        return f"{self.mention_id} ~ {self.query_id}"


# --- daily rollups: dashboards read these, never a million mentions -------------------


class MentionDaily(models.Model):
    """Counts per day × query (0 = all mentions) × source × sentiment, kept at ingest."""

    day = models.DateField()
    query_id = models.IntegerField(default=0)
    source_kind = models.CharField(max_length=12)
    sentiment = models.CharField(max_length=10)
    count = models.PositiveIntegerField(default=0)
    engagement = models.PositiveBigIntegerField(default=0)
    reach = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query_id", "day", "source_kind", "sentiment"], name="uniq_mention_daily"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} q{self.query_id} {self.source_kind} {self.sentiment}: {self.count}"


class TopicDaily(models.Model):
    day = models.DateField()
    term = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "term"], name="uniq_topic_daily")]

    def __str__(self) -> str:
        return f"{self.day} {self.term}: {self.count}"


class AuthorDaily(models.Model):
    day = models.DateField()
    source_kind = models.CharField(max_length=12)
    author_handle = models.CharField(max_length=320)
    author_name = models.CharField(max_length=200, blank=True)
    person_id = models.IntegerField(null=True, blank=True)
    positive = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    influence = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "source_kind", "author_handle"], name="uniq_author_daily")
        ]
        # Covers the advocates/detractors GROUP BY over a day range (index-only: 3x faster).
        indexes = [
            models.Index(
                fields=[
                    "day",
                    "source_kind",
                    "author_handle",
                    "positive",
                    "negative",
                    "total",
                    "influence",
                    "author_name",
                    "person_id",
                ],
                name="author_daily_cover",
            ),
            # One author's days in a range: the exact sums for the dashboard's candidates.
            models.Index(fields=["author_handle", "day"], name="author_daily_handle_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.author_handle}: {self.total}"


class AuthorWeekly(models.Model):
    """AuthorDaily summed per week (starting Monday), kept at ingest next to it. The weeks
    that cover a day range bound each author's counts in that range closely (at most six
    extra days on each side), so the dashboard ranks short ranges by reading a few weeks'
    rows instead of grouping every author-day of the range."""

    week = models.DateField(help_text="The Monday of the week.")
    source_kind = models.CharField(max_length=12)
    author_handle = models.CharField(max_length=320)
    positive = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    influence = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["week", "source_kind", "author_handle"], name="uniq_author_weekly"
            )
        ]
        indexes = [
            models.Index(
                fields=["week", "source_kind", "author_handle", "positive", "negative", "influence"],
                name="author_weekly_cover",
            )
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.author_handle}: {self.total}"


class AuthorTotal(models.Model):
    """Running totals per author over all days, kept at ingest next to AuthorDaily (and
    recomputed from it by `rollups.rebuild`). Never less than any day range's sums, so the
    dashboard ranks advocates and detractors by reading authors in this order (an indexed
    ORDER BY … LIMIT) and stops as soon as no later author can beat its top ten."""

    source_kind = models.CharField(max_length=12)
    author_handle = models.CharField(max_length=320)
    author_name = models.CharField(max_length=200, blank=True)
    person_id = models.IntegerField(null=True, blank=True)
    positive = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    influence = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_kind", "author_handle"], name="uniq_author_total")
        ]
        indexes = [
            models.Index(fields=["-positive", "-influence"], name="author_total_positive"),
            models.Index(fields=["-negative", "-influence"], name="author_total_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.author_handle}: +{self.positive} -{self.negative}"


# --- acting ---------------------------------------------------------------------------


class RuleKind(models.TextChoices):
    NEGATIVE_INFLUENCE = "negative_influence", "Negative mention by an influential author"
    CUSTOMER_COMPLAINT = "customer_complaint", "A known customer or VIP complaining"
    VELOCITY = "velocity", "Volume or negative share above its baseline"


class VelocityMetric(models.TextChoices):
    VOLUME = "volume", "Volume"
    NEGATIVE_SHARE = "negative_share", "Negative share"


class AlertRule(OwnedRecord):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    query = models.ForeignKey(
        ListeningQuery,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Only mentions this query matched; empty for all mentions.",
    )
    min_influence = models.FloatField(default=50.0)
    # Velocity: the last `window_hours` against the same window's average over `baseline_days`.
    metric = models.CharField(max_length=20, choices=VelocityMetric.choices, default=VelocityMetric.VOLUME)
    window_hours = models.PositiveIntegerField(default=24)
    baseline_days = models.PositiveIntegerField(default=14)
    factor = models.FloatField(default=2.0, help_text="How many times the baseline counts as a spike.")
    min_count = models.PositiveIntegerField(default=10, help_text="Ignore spikes smaller than this.")
    cooldown_hours = models.PositiveIntegerField(default=24)
    auto_convert = models.BooleanField(
        default=False, help_text="Turn the mention into an inbox conversation."
    )
    email = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    # What makes it unique for its rule ("mention:123", "spike:2025-01-01T10"): a poll that
    # sees the same thing twice raises one alert.
    key = models.CharField(max_length=100)
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    mentions = models.ManyToManyField(Mention, blank=True, related_name="alerts")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=15, choices=AlertState.choices, default=AlertState.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "key"], name="uniq_alert_rule_key")]
        indexes = [
            models.Index(fields=["state", "created_at", "id"], name="alert_state_time"),
            models.Index(fields=["owner", "state", "created_at"], name="alert_owner_state"),
        ]

    def __str__(self) -> str:
        return self.title
