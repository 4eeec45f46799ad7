import signal

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "A dedicated inbox ingest worker for high inbound volume: stores pending payloads batch "
        "after batch, parsing the next batch in a second process while it stores this one. Run "
        "one per database next to `rapport worker`; the webhooks' queued jobs then find their "
        "payloads already done. Stops cleanly on SIGTERM/SIGINT after the batch in hand."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-parse-ahead", action="store_true", help="Parse and store in this one process."
        )
        parser.add_argument("--once", action="store_true", help="Drain what is pending, then exit.")

    def handle(self, *args, **options):
        from rapport.conversations.ingest import has_pending, run_worker

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        totals = {"batches": 0, "created": 0, "duplicates": 0, "dead": 0}

        def on_batch(result):
            totals["batches"] += 1
            totals["created"] += result.created
            totals["duplicates"] += result.duplicates
            totals["dead"] += result.dead
            if options["verbosity"] > 1:
                self.stdout.write(
                    f"batch of {result.fetched}: {result.created} stored, {result.duplicates} already stored, "
                    f"{result.dead} dead-lettered, {result.write_s * 1000:.0f} ms storing"
                )

        run_worker(
            keep_going=lambda: not stopping and (not options["once"] or has_pending()),
            parse_ahead=not options["no_parse_ahead"],
            on_batch=on_batch,
        )
        self.stdout.write(
            f"inbox worker stopped: {totals['batches']} batches, {totals['created']} messages stored, "
            f"{totals['duplicates']} already stored, {totals['dead']} payloads dead-lettered"
        )
