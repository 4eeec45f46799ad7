"""`rapport worker`: run the background worker of whatever queue is configured — the
in-database queue by default, RQ on Redis when REDIS_URL is set — so deployments and
`make demo` need not know which one it is."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the background task worker for the configured backend."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="Process what is queued, then exit.")

    def handle(self, *args, **opts):
        backend = settings.TASKS["default"]["BACKEND"]
        if backend.startswith("django_tasks_rq"):
            call_command(
                "rqworker",
                "default",
                job_class="django_tasks_rq.Job",
                burst=opts["batch"],
                with_scheduler=False,
            )
        elif backend.startswith("django_tasks_db"):
            call_command("db_worker", batch=opts["batch"], no_startup_delay=True, reload=False)
        else:
            self.stdout.write(f"Backend {backend} runs tasks in-process; no worker needed.")
