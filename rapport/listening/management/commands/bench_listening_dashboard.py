"""`rapport bench_listening_dashboard`: dashboard response times over the mentions in the
database, typically the one `rapport bench listening --mentions 1000000` left behind:

    DATABASE_URL=sqlite:///var/bench-listening-1000000.sqlite3 rapport bench_listening_dashboard
"""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Time the listening dashboard (30/60/90 days, per query, API) over the stored mentions."

    def add_arguments(self, parser):
        parser.add_argument("--days", default="30,60,90", help="Comma-separated ranges in days.")
        parser.add_argument("--requests", type=int, default=21, help="Timed requests per page.")

    def handle(self, *args, days: str, requests: int, **opts):
        from rapport.listening.benchmark import dashboards

        try:
            ranges = [int(d) for d in days.split(",") if d.strip()]
        except ValueError:
            raise CommandError("--days takes numbers, e.g. 30,60,90.") from None
        if not ranges or min(ranges) < 1 or requests < 1:
            raise CommandError("--days and --requests must be positive.")
        try:
            dashboards(days=ranges, requests=requests, stdout=self.stdout)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
