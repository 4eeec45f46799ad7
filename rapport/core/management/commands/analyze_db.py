from django.core.management.base import BaseCommand

from rapport.core.db import refresh_planner_stats


class Command(BaseCommand):
    help = "Refresh the query planner's statistics (ANALYZE). The scheduler runs it daily."

    def handle(self, *args, **opts):
        refresh_planner_stats()
        self.stdout.write("planner statistics refreshed")
