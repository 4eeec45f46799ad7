"""Database sessions, loaded in plain SQL.

Every request reads its session; Django's db backend does it with an ORM query (~0.2 ms of
CPU to compile and build a model instance for one row). Storage, expiry and cleanup are the
db backend's own (same table, same `clearsessions`).

The logged-in user's row is read next, once the session's data names them: a second round
trip (~0.3 ms on PostgreSQL, both sides' CPU). So a session this process has loaded before
reads the user it named then in the same round trip (backends.user_read); the backend uses
those rows only when the session names that user again, else it reads as before."""

import logging
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

from rapport.accounts import backends
from rapport.core import reads

_SQL = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s"
# session key → the id of the user its data named when this process last loaded it
_USER_OF: dict[str, int] = {}
_REMEMBERED = 10_000  # sessions; past that the map starts over


class SessionStore(DbSessionStore):
    def load(self) -> dict[str, Any]:
        backends.prefetched(None, None)
        key, user_id = self.session_key, None
        try:
            statements = [reads.Read(_SQL, [key, reads.db_datetime(timezone.now())])]
            user_id = _USER_OF.get(key) if key else None
            if user_id is not None:
                statements.append(backends.user_read(user_id))
            found = reads.fetch_batch(statements)
        except SuspiciousOperation as exc:  # as the db backend: log, and start a new session
            logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
            found = [[]]
        if not found[0]:
            self._session_key = None
            return {}
        if user_id is not None:
            backends.prefetched(user_id, found[1])
        data = self.decode(found[0][0][0])
        self._remember(key, data.get(SESSION_KEY))
        return data

    def save(self, must_create: bool = False) -> None:
        super().save(must_create)
        # A login saves the session naming its user: the next page reads them together.
        self._remember(self.session_key, getattr(self, "_session_cache", {}).get(SESSION_KEY))

    @staticmethod
    def _remember(key: str | None, user_id: Any) -> None:
        if key is None:
            return
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            _USER_OF.pop(key, None)
            return
        if _USER_OF.get(key) != pk:
            if len(_USER_OF) >= _REMEMBERED:
                _USER_OF.clear()
            _USER_OF[key] = pk
