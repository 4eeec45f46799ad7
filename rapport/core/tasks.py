"""Background tasks of the core. Tasks are thin wrappers around actions: they take ids or
plain values, are idempotent, and do nothing if their row is gone."""

from django.db.models import F
from django.utils import timezone
from django_tasks import task

from rapport.core.models import WorkerHeartbeat


@task()
def heartbeat(backend: str) -> int:
    """Record that a worker of `backend` is alive; returns the run count."""
    hb, created = WorkerHeartbeat.objects.get_or_create(
        backend=backend, defaults={"seen_at": timezone.now(), "runs": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=hb.pk).update(seen_at=timezone.now(), runs=F("runs") + 1)
        hb.refresh_from_db()
    return hb.runs
