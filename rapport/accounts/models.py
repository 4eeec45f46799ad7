"""Users, teams and roles. A role says what kind of work a person does and bounds what they
may change; teams bound what they may see (see rapport.core.access)."""

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    MANAGER = "manager", "Manager"
    SALES = "sales", "Sales"
    SERVICE = "service", "Service"
    MARKETING = "marketing", "Marketing"
    READ_ONLY = "readonly", "Read-only"


# The account automated capture acts as (the inbox creating people, routing). It cannot log
# in and is not listed among the people who use Rapport.
SERVICE_USERNAME = "rapport-bot"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SALES)
    teams = models.ManyToManyField(Team, related_name="members", blank=True)

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN

    @property
    def can_write(self) -> bool:
        return self.is_active and self.role != Role.READ_ONLY

    def team_ids(self) -> list[int]:
        # Cached per instance: every access check on a request needs it.
        cached = getattr(self, "_team_ids", None)
        if cached is None:
            cached = list(self.teams.values_list("id", flat=True))
            self._team_ids = cached
        return cached

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a SHA-256 of the secret is stored, so a leaked
    database does not leak working tokens."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="token")
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user: User, name: str = "token") -> tuple["ApiToken", str]:
        raw = "rp_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=raw[:10], key_hash=cls.hash_key(raw))
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> User | None:
        token = (
            cls.objects.select_related("user")
            .filter(key_hash=cls.hash_key(raw), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token is None:
            return None
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
