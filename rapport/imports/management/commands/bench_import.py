"""Run the import benchmark: `rapport bench_import --rows 100000 [--dry-run]`."""

import json

from django.core.management.base import BaseCommand

from rapport.imports.benchmark import run


class Command(BaseCommand):
    help = "Generate a people CSV with duplicates and import it through the real pipeline; print figures."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--dry-run", action="store_true", help="Also time the dry run (analysis) pass.")

    def handle(self, *args, rows: int, dry_run: bool, **options):
        figures = run(rows=rows, stdout=self.stdout, dry_run=dry_run)
        self.stdout.write(json.dumps(figures))
