from django.core.management.base import BaseCommand

from rapport.listening.benchmark import run


class Command(BaseCommand):
    help = "Benchmark mention ingest end to end (dedup, matching, scoring, author resolution)."

    def add_arguments(self, parser):
        parser.add_argument("--mentions", type=int, default=20000)

    def handle(self, *args, mentions: int, **options):
        run(mentions=mentions, stdout=self.stdout)
