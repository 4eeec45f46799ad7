"""Poll every active source once; used by `rapport listen` and the queue task."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from rapport.listening.models import ListeningSource
from rapport.listening.sources.registry import poller_for

log = logging.getLogger("rapport.listening")


def continuous(source: ListeningSource) -> bool:
    return (
        source.kind == "x_stream"
        and isinstance(source.config, dict)
        and source.config.get("mode") == "continuous"
    )


def poll_all(*, source_ids: list[int] | None = None) -> list[dict[str, Any]]:
    results = []
    sources = ListeningSource.objects.filter(is_active=True).order_by("id")
    if source_ids:
        sources = sources.filter(pk__in=source_ids)
    for source in sources:
        if continuous(source) and not source_ids:
            continue  # its own `rapport listen --stream` process reads it
        try:
            results.append(poller_for(source).poll(now=timezone.now()).as_dict())
        except Exception as exc:  # one broken source must not stop the others
            log.exception("listening source %s failed", source.pk)
            ListeningSource.objects.filter(pk=source.pk).update(
                last_error=f"{type(exc).__name__}: {exc}"[:2000], last_error_at=timezone.now()
            )
            results.append({"source_id": source.pk, "errors": [str(exc)[:500]]})
    return results
