"""People and organisations: the heart of the relationship graph.

Names are kept as typed; `*_key` columns hold a folded lower-case form used for sorting,
prefix search and duplicate detection, indexed so lists stay fast at a million rows."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from rapport.core.models import OwnedRecord
from rapport.core.text import fold


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)
    color = models.CharField(max_length=7, default="#5b6cff")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Source(models.TextChoices):
    MANUAL = "manual", "Typed in"
    QUICK_ADD = "quick_add", "Quick add"
    IMPORT = "import", "Import"
    INBOX = "inbox", "Inbox"
    API = "api", "API"
    SEED = "seed", "Demo data"


class Organisation(OwnedRecord):
    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, db_index=True, editable=False)
    industry = models.CharField(max_length=100, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    website = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True, max_length=20000)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="subsidiaries"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="organisations")
    custom = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["name_key", "id"], name="org_sort"),
            # Subsidiaries in name order: with only the parent's own index, SQLite preferred
            # walking every organisation by name and testing the parent (25 ms at 50,000).
            models.Index(fields=["parent", "name_key", "id"], name="org_parent_sort"),
        ]

    def save(self, *args, **kwargs):
        self.refresh_keys()
        super().save(*args, **kwargs)

    def refresh_keys(self) -> None:
        self.name_key = fold(self.name)[:200]

    def __str__(self) -> str:
        return self.name


class OrganisationDomain(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "domain"], name="uniq_org_domain")]

    def __str__(self) -> str:
        return self.domain


class Person(OwnedRecord):
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    # "last first", folded: the list's sort order and one of two prefix-search keys.
    sort_key = models.CharField(max_length=201, editable=False)
    # "first last", folded: the other prefix-search key.
    name_key = models.CharField(max_length=201, db_index=True, editable=False)
    title = models.CharField(max_length=150, blank=True)
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="people"
    )
    bio = models.TextField(blank=True, max_length=20000)
    language = models.CharField(max_length=10, blank=True)
    is_vip = models.BooleanField(default=False)
    needs_review = models.BooleanField(default=False, help_text="Created automatically; may be a duplicate.")
    tags = models.ManyToManyField(Tag, blank=True, related_name="people")
    custom = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_activity_at = models.DateTimeField(null=True, blank=True)

    # Not columns: set on list pages by people.selectors.attach_primary_identities (one query
    # per page). Declared so type checkers know them; unset on a Person loaded any other way.
    primary_email: str
    primary_phone: str

    class Meta:
        indexes = [
            models.Index(fields=["sort_key", "id"], name="person_sort"),
            models.Index(fields=["organisation", "sort_key"], name="person_org_sort"),
            models.Index(fields=["owner", "sort_key", "id"], name="person_owner_sort"),
            models.Index(fields=["is_vip", "sort_key", "id"], name="person_vip_sort"),
            models.Index(fields=["needs_review", "sort_key", "id"], name="person_review_sort"),
            # The review queue (people created automatically, maybe duplicates) is usually a
            # small part of everyone; with only the index above SQLite could not tell and
            # counted it by scanning all people (120 ms at 1M). Queries name the bare column.
            models.Index(
                fields=["sort_key", "id"], condition=models.Q(needs_review=True), name="person_review_queue"
            ),
        ]

    def save(self, *args, **kwargs):
        self.refresh_keys()
        super().save(*args, **kwargs)

    def refresh_keys(self) -> None:
        first, last = fold(self.first_name), fold(self.last_name)
        self.sort_key = f"{last} {first}".strip()[:201]
        self.name_key = f"{first} {last}".strip()[:201]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or "(no name)"

    def __str__(self) -> str:
        return self.full_name


class IdentityKind(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    X = "x", "X / Twitter"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    LINKEDIN = "linkedin", "LinkedIn"
    FACEBOOK = "facebook", "Facebook"
    INSTAGRAM = "instagram", "Instagram"
    WHATSAPP = "whatsapp", "WhatsApp"
    WEBSITE = "website", "Website"


class Identity(models.Model):
    """One way to reach or recognise a person: an email, phone (E.164), handle or URL.

    `value` is the normalised form (see rapport.people.identities); lookups by identity use
    (kind, value), which is how the inbox ties an incoming message to a person."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=12, choices=IdentityKind.choices)
    value = models.CharField(max_length=320)
    label = models.CharField(max_length=30, blank=True)
    is_primary = models.BooleanField(default=False)
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "value"], name="identity_lookup"),
            models.Index(fields=["value"], name="identity_value"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["person", "kind", "value"], name="uniq_person_identity")
        ]
        ordering = ["-is_primary", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class Employment(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="employments")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="employments")
    title = models.CharField(max_length=150, blank=True)
    started_on = models.DateField(null=True, blank=True)
    ended_on = models.DateField(null=True, blank=True)
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["-is_current", "-started_on", "-id"]

    def __str__(self) -> str:
        return f"{self.title or 'Works'} at {self.organisation_id}"


class Address(models.Model):
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.CASCADE, related_name="addresses"
    )
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="addresses"
    )
    label = models.CharField(max_length=30, blank=True, default="work")
    street = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=60, blank=True)

    def __str__(self) -> str:
        return ", ".join(p for p in [self.street, self.postcode, self.city, self.region, self.country] if p)


class RelationshipKind(models.TextChoices):
    COLLEAGUE = "colleague", "Colleague of"
    REPORTS_TO = "reports_to", "Reports to"
    KNOWS = "knows", "Knows"
    INTRODUCED_BY = "introduced_by", "Introduced by"


class Relationship(models.Model):
    """A directed link between two people, with how strong it is and where we learnt it."""

    from_person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="relationships_out")
    to_person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="relationships_in")
    kind = models.CharField(max_length=20, choices=RelationshipKind.choices)
    strength = models.PositiveSmallIntegerField(default=50)  # 0–100
    source = models.CharField(max_length=30, default="manual")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["from_person", "to_person", "kind"], name="uniq_relationship"),
            models.CheckConstraint(
                condition=~models.Q(from_person=models.F("to_person")), name="no_self_relationship"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_person_id} {self.kind} {self.to_person_id}"
