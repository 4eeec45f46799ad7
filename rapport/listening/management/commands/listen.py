import json
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from rapport.listening.polling import poll_all


class Command(BaseCommand):
    help = "Poll every active listening source once (or keep polling with --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep polling.")
        parser.add_argument("--interval", type=int, default=300, help="Seconds between rounds (with --loop).")
        parser.add_argument("--source", type=int, action="append", help="Only this source id (repeatable).")
        parser.add_argument("--queue", action="store_true", help="Enqueue a poll on the task queue instead.")
        parser.add_argument(
            "--stream",
            type=int,
            metavar="SOURCE_ID",
            help="Keep this X filtered stream source connected until stopped (a long-running process).",
        )

    def handle(
        self,
        *args,
        loop: bool,
        interval: int,
        source: list[int] | None,
        queue: bool,
        stream: int | None = None,
        **options,
    ):
        if stream is not None:
            return self.stream(stream)
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

    def stream(self, source_id: int) -> None:
        from rapport.listening.models import ListeningSource
        from rapport.listening.sources.x.stream import run_forever

        if not ListeningSource.objects.filter(pk=source_id, kind="x_stream").exists():
            raise CommandError(f"No X filtered stream source with id {source_id}.")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        run_forever(
            source_id,
            should_stop=lambda: stopping,
            report=lambda result: self.stdout.write(json.dumps(result.as_dict())),
        )
