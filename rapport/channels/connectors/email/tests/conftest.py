"""Real local mail servers for the email connector's tests.

- Dovecot (Debian package `dovecot-imapd`): started once per test session from a config
  generated in a temporary directory (maildir storage, a passwd-file, plaintext auth on a
  free loopback port, no SSL) and stopped afterwards. Tests are skipped with a clear reason
  when /usr/sbin/dovecot is not installed.
- An SMTP sink (aiosmtpd's Controller) on a free loopback port, per test.

Each test gets its own IMAP user, so tests never see each other's mail."""

import imaplib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rapport.channels.models import Channel, ChannelKind

DOVECOT = "/usr/sbin/dovecot"
_users = itertools.count(1)
USERS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not listen on {port}: {log.read_text() if log.exists() else ''}")


@dataclass
class Dovecot:
    root: Path
    port: int
    proc: subprocess.Popen
    uid: int
    gid: int
    users: list[str] = field(default_factory=list)

    def add_user(self) -> str:
        """A fresh mailbox. The accounts are written before Dovecot starts: it may not notice
        a passwd-file changed twice within one second."""
        n = next(_users)
        assert n <= USERS, "raise USERS in conftest.py"
        name = f"user{n}"
        self.users.append(name)
        return name

    def imap(self, user: str, password: str = "secret-pw") -> imaplib.IMAP4:  # noqa: S107
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, password)
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.imap(user)
        try:
            if folder != "INBOX":
                conn.create(f'"{folder}"')
            typ, data = conn.append(f'"{folder}"', None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, user: str, folder: str = "INBOX") -> list[bytes]:
        conn = self.imap(user)
        try:
            conn.select(f'"{folder}"', readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            return [d for d in data if d]
        finally:
            conn.logout()


@pytest.fixture(scope="session")
def dovecot_server():
    if not os.path.exists(DOVECOT):
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd); skipping real-IMAP tests.")
    root = Path(tempfile.mkdtemp(prefix="rapport-dovecot-"))
    port = free_port()
    if os.geteuid() == 0:
        # Dovecot refuses to handle mail as root: mail belongs to `nobody` here.
        uid, gid = 65534, 65534
        users = ""
    else:
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        users = f"default_login_user = {me}\ndefault_internal_user = {me}\n"
    (root / "home").mkdir()
    lines = []
    for n in range(1, USERS + 1):
        home = root / "home" / f"user{n}"
        home.mkdir()
        os.chown(home, uid, gid)
        lines.append(f"user{n}:{{PLAIN}}secret-pw::::::\n")
    (root / "passwd").write_text("".join(lines))
    os.chmod(root, 0o755)
    log = root / "dovecot.log"
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{root}/home/%u/Maildir
first_valid_uid = 1
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
    )
    proc = subprocess.Popen(  # noqa: S603 - fixed binary, generated config
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=(root / "stderr.log").open("w"),
        start_new_session=True,
    )
    try:
        _wait_for_port(port, proc, log)
        yield Dovecot(root=root, port=port, proc=proc, uid=uid, gid=gid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server):
    return dovecot_server


@dataclass
class Sink:
    port: int
    messages: list = field(default_factory=list)
    refuse: dict = field(default_factory=dict)  # recipient → "550 …" answer


class _Handler:
    def __init__(self, sink: Sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.sink.refuse:
            return self.sink.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.sink.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    sink = Sink(port=free_port())
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def email_channel(team, *, dovecot=None, user="", smtp_port=0, **settings) -> Channel:
    channel = Channel(
        kind=ChannelKind.EMAIL,
        name="Support mailbox",
        team=team,
        settings={"from_address": "support@rapport.test", "message_id_domain": "rapport.test", **settings},
    )
    creds = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port or 1, "smtp_security": "none"}
    if dovecot is not None:
        creds.update(
            imap_host="127.0.0.1",
            imap_port=dovecot.port,
            imap_security="none",
            imap_username=user,
            imap_password="secret-pw",  # noqa: S106 - test account
        )
    channel.credentials = creds
    channel.save()
    return channel
