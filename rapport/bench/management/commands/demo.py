"""`rapport demo` (what `make demo` runs): migrate, seed a demo organisation once, start the
background worker and serve the app with gunicorn until Ctrl-C.

Demo logins share the password `rapport-demo`: fine on a laptop, never for a server anyone
else can reach, which is why it binds to 127.0.0.1 unless told otherwise."""

import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from rapport.accounts.models import Role
from rapport.bench.management.commands.bench import gunicorn_command, stop, wait_healthy
from rapport.bench.seed import DEMO_PASSWORD, DEMO_USERS, ensure_demo_users, is_seeded, seed
from rapport.people.models import Person


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run the demo: migrate, seed demo data once, start the worker and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--people", type=int, default=2000, help="People to seed the first time.")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")

    def handle(self, *args, **opts):
        host, port = opts["host"], opts["port"]
        if not 1 <= port <= 65535:
            raise CommandError("--port is between 1 and 65535.")
        if not _port_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is already in use. Stop what is using it, or pick another port: "
                f"PORT={port + 1} make demo (or rapport demo --port {port + 1})."
            )
        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        ensure_demo_users()
        if is_seeded():
            self.stdout.write(
                f"Demo data already there ({Person.objects.count():,} people); not seeding again."
            )
        else:
            self.stdout.write(f"Seeding a demo organisation with {opts['people']:,} people…")
            result = seed(
                people=opts["people"], seed=42, users=True, progress=lambda msg: self.stdout.write("  " + msg)
            )
            self.stdout.write(f"  {result.rows:,} rows in {result.seconds:.1f}s")
        # Idempotent: a second start adds nothing.
        from rapport.conversations.demo import seed_inbox

        self.stdout.write("Filling the demo inbox…")
        seed_inbox(conversations=300, seed=42)
        from rapport.listening.demo import seed_listening

        self.stdout.write("Listening to the demo brand…")
        seed_listening(mentions=3000, seed=42)

        worker = server = scheduler = None
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
        code = 0
        try:
            # Own sessions: Ctrl-C reaches only us, and we stop the children in order.
            worker = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "rapport.cli", "worker"], start_new_session=True
            )
            scheduler = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "rapport.cli", "scheduler"],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
            server = subprocess.Popen(  # noqa: S603
                gunicorn_command(port, host=host, workers=opts["workers"], threads=4), start_new_session=True
            )
            probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            probe = f"[{probe_host}]" if ":" in probe_host else probe_host
            wait_healthy(f"http://{probe}:{port}", server)
            self._banner(host, port)
            while True:
                for name, proc in (
                    ("web server", server),
                    ("background worker", worker),
                    ("scheduler", scheduler),
                ):
                    if proc.poll() is not None:
                        self.stderr.write(f"The {name} stopped (exit code {proc.returncode}); shutting down.")
                        code = 1
                        raise _Stop
                time.sleep(0.5)
        except (KeyboardInterrupt, _Stop):
            pass
        finally:
            self.stdout.write("\nStopping…")
            stop(server)
            stop(worker)
            stop(scheduler)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stdout.write("Stopped.")
        if code:
            raise SystemExit(code)

    def _banner(self, host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS(f"Rapport is running at {url}"))
        if host not in ("127.0.0.1", "localhost", "::1"):
            w(self.style.WARNING(f"Listening on {host}: the demo passwords are public, do not expose this."))
            if host not in settings.ALLOWED_HOSTS:
                w(f"Set ALLOWED_HOSTS to the name you will use to reach it (now {settings.ALLOWED_HOSTS}).")
        w("")
        w("Demo logins (demo only; the same password for everyone):")
        w(f"  {'username':<10} {'password':<14} {'role':<16} team")
        w(f"  {'-' * 10} {'-' * 14} {'-' * 16} {'-' * 5}")
        for username, role, team, _first, _last in DEMO_USERS:
            w(f"  {username:<10} {DEMO_PASSWORD:<14} {Role(role).label:<16} {team or '—'}")
        w("")
        w("Press Ctrl-C to stop.")
