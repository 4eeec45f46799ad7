"""The authentication backend: Django's ModelBackend, with the per-request user lookup read
in plain SQL together with the user's team ids (which every access check needs).

Why: every page loads the logged-in user and their teams; through the ORM that was two
compiled queries (~0.4 ms of CPU), a tenth of a list page's budget. Now one statement: the
user's row once per team (a LEFT JOIN, so a user without a team still has one row), as a
second round trip cost ~0.2 ms on PostgreSQL. The session read usually brings these rows
along in its own round trip (see sessions.py and `prefetched`). Passwords, permissions and
`user_can_authenticate` stay ModelBackend's."""

import threading
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.signals import request_finished
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


def user_read(pk: int) -> reads.Read:
    """The statement get_user runs for user `pk`, for a batch that reads it ahead."""
    return reads.Read(_SQL, [pk])


# The rows of user_read read ahead on this thread for this request (sessions.py), as
# (user id, rows); taken by the next get_user of that id, dropped when the request ends.
_ahead = threading.local()


def prefetched(pk: int | None, rows: list[tuple[Any, ...]] | None) -> None:
    _ahead.value = (pk, rows) if pk is not None and rows is not None else None


def _forget(**kwargs: Any) -> None:
    _ahead.value = None


request_finished.connect(_forget, dispatch_uid="rapport.accounts.backends.forget")


class AuthBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:  # type: ignore[override]
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        ahead = getattr(_ahead, "value", None)
        _ahead.value = None
        rows = ahead[1] if ahead is not None and ahead[0] == pk else reads.fetch_prepared(_SQL, [pk])
        if not rows:
            return None
        values = list(rows[0][:-1])
        for i in _DATES:
            values[i] = reads.aware(values[i])
        user = User.from_db(connection.alias, [f.attname for f in _FIELDS], values)
        user._team_ids = [r[-1] for r in rows if r[-1] is not None]
        return user if self.user_can_authenticate(user) else None
