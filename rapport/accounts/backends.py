"""The authentication backend: Django's ModelBackend, with the per-request user lookup read
in plain SQL together with the user's team ids (which every access check needs).

Why: every page loads the logged-in user and their teams; through the ORM that was two
compiled queries (~0.4 ms of CPU), a tenth of a list page's budget. Now one statement: the
user's row once per team (a LEFT JOIN, so a user without a team still has one row), as a
second round trip cost ~0.2 ms on PostgreSQL. Passwords, permissions and
`user_can_authenticate` stay ModelBackend's."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import connection, models

from rapport.accounts.models import User
from rapport.core import reads
from rapport.core.rows import column

_FIELDS = [f for f in User._meta.concrete_fields]
_SQL = (
    f"SELECT {', '.join('u.' + column(f) for f in _FIELDS)}, ut.team_id FROM accounts_user u "  # noqa: S608
    "LEFT OUTER JOIN accounts_user_teams ut ON ut.user_id = u.id WHERE u.id = %s"
)
_DATES = [i for i, f in enumerate(_FIELDS) if isinstance(f, models.DateTimeField)]


class AuthBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:  # type: ignore[override]
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        rows = reads.fetch_prepared(_SQL, [pk])
        if not rows:
            return None
        values = list(rows[0][:-1])
        for i in _DATES:
            values[i] = reads.aware(values[i])
        user = User.from_db(connection.alias, [f.attname for f in _FIELDS], values)
        user._team_ids = [r[-1] for r in rows if r[-1] is not None]
        return user if self.user_can_authenticate(user) else None
