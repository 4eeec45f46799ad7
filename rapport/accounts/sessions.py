"""Database sessions, loaded in plain SQL.

Every request reads its session; Django's db backend does it with an ORM query (~0.2 ms of
CPU to compile and build a model instance for one row). Storage, expiry and cleanup are the
db backend's own (same table, same `clearsessions`)."""

import logging
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

from rapport.core import reads


class SessionStore(DbSessionStore):
    def load(self) -> dict[str, Any]:
        try:
            row = reads.fetch_one_prepared(
                "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s",
                [self.session_key, reads.db_datetime(timezone.now())],
            )
        except SuspiciousOperation as exc:  # as the db backend: log, and start a new session
            logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
            row = None
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])
