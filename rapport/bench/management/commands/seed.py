"""`rapport seed`: append realistic, deterministic demo data (see rapport.bench.seed)."""

from django.core.management.base import BaseCommand, CommandError

from rapport.bench.seed import SeedError, default_counts, describe, seed


class Command(BaseCommand):
    help = "Generate realistic demo data: people, organisations, deals, activities (same seed, same data)."

    def add_arguments(self, parser):
        parser.add_argument("--people", type=int, default=2000)
        parser.add_argument("--orgs", type=int, help="Default: people / 20.")
        parser.add_argument("--deals", type=int, help="Default: people / 10.")
        parser.add_argument("--activities", type=int, help="Default: 2 per person (1 above 100,000 people).")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same data.")
        parser.add_argument(
            "--users",
            action="store_true",
            help="Create the demo users (password rapport-demo; demo and benchmark databases only).",
        )

    def handle(self, *args, **opts):
        people = opts["people"]
        if people < 0 or people > 10_000_000:
            raise CommandError("--people is between 0 and 10,000,000.")
        counts = default_counts(people)
        self.stdout.write(
            f"Seeding {people:,} people, {opts['orgs'] if opts['orgs'] is not None else counts['orgs']:,} "
            f"organisations, {opts['deals'] if opts['deals'] is not None else counts['deals']:,} deals "
            f"(seed {opts['seed']})…"
        )
        try:
            result = seed(
                people=people,
                orgs=opts["orgs"],
                deals=opts["deals"],
                activities=opts["activities"],
                seed=opts["seed"],
                users=opts["users"],
                progress=lambda msg: self.stdout.write("  " + msg),
            )
        except SeedError as exc:
            raise CommandError(str(exc))
        for line in describe(result):
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.rows:,} rows in {result.seconds:.1f}s "
                f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)."
            )
        )
