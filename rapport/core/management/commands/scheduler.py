"""`rapport scheduler`: runs the periodic jobs (SLA checks, inbox sweep, channel and listening
pollers) every interval. One scheduler per installation; the work itself is idempotent, so
an overlap after a restart does no harm. `rapport demo` starts one."""

import logging
import signal
import time

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

log = logging.getLogger("rapport.scheduler")

# (command, seconds between runs). Commands that are not installed are skipped.
JOBS: list[tuple[str, int]] = [
    ("sla_check", 60),
    ("inbox_sweep", 60),
    ("poll_email", 60),
    ("poll_channels", 60),
    ("fetch_media", 60),
    ("listen", 300),
    ("analyze_db", 24 * 3600),
]


class Command(BaseCommand):
    help = "Run periodic jobs (SLA checks, inbox sweep, pollers) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every due job once, then exit.")

    def handle(self, *args, **opts):
        installed = get_commands()
        jobs = [(name, every) for name, every in JOBS if name in installed]
        self.stdout.write("Scheduler jobs: " + ", ".join(f"{n} every {e}s" for n, e in jobs))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        next_run = dict.fromkeys((name for name, _ in jobs), 0.0)
        while not stopping:
            now = time.monotonic()
            for name, every in jobs:
                if now >= next_run[name]:
                    next_run[name] = now + every
                    try:
                        call_command(name)
                    except Exception:  # one failing job must not stop the others
                        log.exception("scheduled job %s failed", name)
            if opts["once"]:
                return
            time.sleep(1)
