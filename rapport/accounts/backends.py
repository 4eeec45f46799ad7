"""The authentication backend: Django's ModelBackend, with the per-request user lookup read
in plain SQL together with the user's team ids (which every access check needs).

Why: every page loads the logged-in user and their teams; through the ORM that was two
compiled queries (~0.4 ms of CPU), a tenth of a list page's budget. Passwords, permissions
and `user_can_authenticate` stay ModelBackend's."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import connection, models

from rapport.accounts.models import User
from rapport.core import reads
from rapport.core.rows import column

_FIELDS = [f for f in User._meta.concrete_fields]
_SQL = f"SELECT {', '.join(column(f) for f in _FIELDS)} FROM accounts_user WHERE id = %s"  # noqa: S608
_DATES = [i for i, f in enumerate(_FIELDS) if isinstance(f, models.DateTimeField)]


class AuthBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:  # type: ignore[override]
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        row = reads.fetch_one_prepared(_SQL, [pk])
        if row is None:
            return None
        values = list(row)
        for i in _DATES:
            values[i] = reads.aware(values[i])
        user = User.from_db(connection.alias, [f.attname for f in _FIELDS], values)
        user._team_ids = [
            r[0]
            for r in reads.fetch_prepared("SELECT team_id FROM accounts_user_teams WHERE user_id = %s", [pk])
        ]
        return user if self.user_can_authenticate(user) else None
