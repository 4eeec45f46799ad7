"""`rapport fetch_media`: the recovery sweep for attachments, fetching every pending one that
is due (its task was lost, or the queue backend cannot defer retries). Idempotent."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Fetch the attachments still waiting to be downloaded (retries included)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200, help="At most this many attachments per run.")

    def handle(self, *args, **opts):
        from rapport.channels.media import fetch_due

        self.stdout.write(f"attachments fetched {fetch_due(limit=opts['limit'])}")
