"""`rapport poll_email [--channel ID] [--loop --interval 60]`: fetch new mail from every
active email channel (IMAP), store it, and queue it for the inbox pipeline. Read-only on the
server: no message is deleted, moved or marked read. `rapport scheduler` runs it every minute."""

import signal
import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Poll email channels over IMAP (never deletes, moves or marks mail as read)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, help="Only this channel id.")
        parser.add_argument("--loop", action="store_true", help="Keep polling until stopped.")
        parser.add_argument("--interval", type=int, default=60, help="Seconds between polls with --loop.")

    def handle(self, *args, **opts):
        from rapport.channels.connectors.email.poller import poll_all

        if opts["interval"] < 5:
            raise CommandError("--interval must be at least 5 seconds.")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        if opts["loop"]:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        while True:
            for result in poll_all(channel_id=opts["channel"]):
                if result.skipped:
                    self.stdout.write(f"channel {result.channel_id}: skipped ({result.skipped})")
                    continue
                for f in result.folders:
                    extra = " (UIDVALIDITY changed: re-scanned)" if f.rescan else ""
                    self.stdout.write(
                        f"channel {result.channel_id} {f.folder}: {f.fetched} fetched, {f.stored} new, "
                        f"{f.duplicates} already stored, {f.truncated} header-only{extra}"
                    )
                if result.error:
                    self.stderr.write(f"channel {result.channel_id}: {result.error}")
            if not opts["loop"]:
                return
            deadline = time.monotonic() + opts["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.5)
            if stopping:
                return
