"""Both queue backends, end to end: enqueue through Django's tasks API, run a real worker,
see the effect in the database."""

import socket

import pytest
from django.core.management import call_command
from django.test import override_settings

from rapport.core.models import WorkerHeartbeat

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
RQ_URL = "redis://127.0.0.1:6379/15"


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_database_queue_runs_task_with_db_worker():

    from rapport.core.tasks import heartbeat

    with override_settings(TASKS=DB_TASKS):
        result = heartbeat.using(backend="default").enqueue("db")
        assert not WorkerHeartbeat.objects.exists()  # queued, not run inline
        call_command("worker", batch=True)
        assert WorkerHeartbeat.objects.get(backend="db").runs == 1
        result.refresh()
        assert result.status == "SUCCESSFUL"
        assert result.return_value == 1


@pytest.mark.redis
@pytest.mark.skipif(not redis_available(), reason="no Redis server on 127.0.0.1:6379")
@pytest.mark.django_db(transaction=True)
def test_redis_queue_runs_task_with_rq_worker():
    import django_rq
    from django_tasks_rq.backend import Job
    from rq import SimpleWorker

    from rapport.core.tasks import heartbeat

    queues = {"default": {"URL": RQ_URL, "DEFAULT_TIMEOUT": 60}}
    with override_settings(TASKS=RQ_TASKS, RQ_QUEUES=queues):
        django_rq.get_queue("default").empty()
        heartbeat.using(backend="default").enqueue("rq")
        heartbeat.using(backend="default").enqueue("rq")
        assert not WorkerHeartbeat.objects.exists()
        # SimpleWorker runs jobs in this process (no fork), so it sees the test database.
        worker = django_rq.get_worker("default", job_class=Job, worker_class=SimpleWorker)
        worker.work(burst=True)
        assert WorkerHeartbeat.objects.get(backend="rq").runs == 2
