import json
import time

from django.core.management.base import BaseCommand

from rapport.listening.polling import poll_all


class Command(BaseCommand):
    help = "Poll every active listening source once (or keep polling with --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep polling.")
        parser.add_argument("--interval", type=int, default=300, help="Seconds between rounds (with --loop).")
        parser.add_argument("--source", type=int, action="append", help="Only this source id (repeatable).")
        parser.add_argument("--queue", action="store_true", help="Enqueue a poll on the task queue instead.")

    def handle(self, *args, loop: bool, interval: int, source: list[int] | None, queue: bool, **options):
        if queue:
            from rapport.listening.tasks import poll_sources

            poll_sources.enqueue(source)
            self.stdout.write("Poll enqueued.")
            return
        while True:
            for result in poll_all(source_ids=source):
                self.stdout.write(json.dumps(result))
            if not loop:
                return
            time.sleep(max(10, interval))
