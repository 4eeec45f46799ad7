"""`rapport bench ingest`: the inbox's ingestion benchmark.

N generated messages from about N/10 people go through the real pipeline, end to end: each
delivery is verified (signed webhook) and stored as a RawPayload by the same function the
webhook views use, then a worker process drains the pending payloads in batches (normalise
with the connector's real normaliser → store idempotently → resolve identity → thread →
score → route → notify). Every channel kind gets an even share of the senders. Connectors
other than the generic webhook are driven from one ordinary message among their own fixtures
(the platform's documented format, chosen in TEMPLATES), with the external id, author and
text set in it; each generator proves once that the real normaliser reads its payloads back
as meant, and a connector whose generator cannot is left out, and the run says so. Every
message is delivered twice: half of the second deliveries repeat the delivery id (the
platform retrying), half come with a new one (the same message in another event), so both
the payload-level and the message-level deduplication are exercised. Afterwards the store is
checked: every message present once (`lost`, `duplicated`), every payload processed. The
receiver runs in this process and the worker in another (two cores).

It refuses the application's own database: by default it creates a fresh scratch SQLite
file under var/ and re-runs itself against it (or set DATABASE_URL to a scratch database)."""

import copy
import html
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy as mail_policy
from email.message import MIMEPart
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import connection, connections
from django.db.models import Count
from django.utils import timezone

from rapport.channels.models import Channel, ChannelKind, PayloadStatus, RawPayload

RECEIVE_CHUNK = 200
WORKER_PAUSE = 0.2  # seconds a worker waits when there is less than a batch pending
# The worker parses ahead in a second process (see ingest.ParseAhead); off to compare.
PARSE_AHEAD = os.environ.get("RAPPORT_BENCH_PARSE_AHEAD", "1") != "0"

ANGRY = [
    "This is unacceptable. My order {n} arrived broken and nobody answers. I want a refund now!",
    "Worst service ever, I have been waiting two weeks for order {n}. Cancel my account.",
    "Your app keeps crashing and I lost my invoice {n}. Terrible, fix it today.",
]
QUESTIONS = [
    "Hello, could you tell me when order {n} will be delivered?",
    "Hi, do you ship to Norway? I would like to order {n} units.",
    "Can I change the delivery address for order {n}?",
    "What is the price for the premium plan for {n} seats?",
]
HAPPY = [
    "Thanks a lot, the replacement for order {n} arrived and works perfectly!",
    "Great support team, you solved it in minutes. Order {n} is fine now.",
]


def _write(out: TextIO | Any, text: str) -> None:
    out.write(text if text.endswith("\n") else text + "\n")


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# --- scratch database -----------------------------------------------------------------------


def _app_database() -> bool:
    """True when the configured database is the application's own default SQLite file."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return False
    name = str(db.get("NAME") or "")
    return bool(name) and Path(name).resolve() == (Path(settings.VAR_DIR) / "rapport.sqlite3").resolve()


def _in_scratch(suite: str, argv: list[str], path: Path, stdout: Any) -> dict[str, Any]:
    """Re-run `rapport bench <suite> …` against a fresh SQLite file and return its JSON line."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    rapport = [sys.executable, "-m", "rapport.cli"]
    _write(stdout, f"Fresh scratch database {path}")
    subprocess.run([*rapport, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
    done = subprocess.run(  # noqa: S603
        [*rapport, "bench", suite, *argv], env=env, check=False, stdout=subprocess.PIPE, text=True
    )
    lines = done.stdout.rstrip("\n").splitlines()
    for line in lines[:-1]:
        _write(stdout, line)
    if done.returncode or not lines:
        raise SystemExit(done.returncode or 1)
    _write(stdout, lines[-1])
    return json.loads(lines[-1])


# --- message generators ---------------------------------------------------------------------


@dataclass
class Sender:
    n: int
    kind: str  # channel kind
    identity_kind: str
    value: str
    name: str


@dataclass
class Delivery:
    channel: Channel
    body: bytes
    delivery_id: str
    headers: dict[str, str]


class Generator:
    """Builds raw platform payloads for one channel kind; `check` proves, once, that the
    connector's real normaliser reads them back as the message meant."""

    kind: str
    identity_kind: str
    # Stored with each payload, as the connector's webhook view stores them.
    headers: dict[str, str]
    # Whether a message can answer the sender's previous one (reply_to is honoured).
    replies: bool

    def author(self, n: int) -> str:
        raise NotImplementedError

    def body(self, *, ext: str, sender: Sender, text: str, reply_to: str, thread: str) -> bytes:
        raise NotImplementedError

    def external_id(self, ext: str, sender: Sender) -> str:
        """The external id the message is stored under: the platform's own form of `ext`."""
        return ext

    def reads_as(self, ext: str, sender: Sender, text: str) -> str:
        """The text the normaliser reads back (a platform may add to what the customer wrote)."""
        return text

    def check(self, channel: Channel) -> None:
        """Raise LookupError unless a generated payload, on its own and as an answer to the
        sender's previous message, reads back through the connector's real normaliser as
        exactly one message with the generated external id, author (a valid identity of
        `identity_kind`, so identity resolution does real work) and text."""
        from rapport.channels import registry
        from rapport.people.identities import IdentityError, normalise

        inbound = registry.inbound(self.kind)
        # Markup, an ampersand, a non-ASCII character and a quote: each platform's encoding
        # (JSON, form, quoted-printable, HTML) must carry them through.
        text = "Probe: is order 4471 <on its way> & paid (€20)? It's urgent."
        sender = Sender(7, self.kind, self.identity_kind, self.author(7), "Zoë O'Brien")
        try:
            identity = normalise(self.identity_kind, sender.value)
        except IdentityError as exc:
            raise LookupError(f"the author {sender.value!r} is not a valid {self.identity_kind}: {exc}")
        for reply_to in ("", "benchprobe0") if self.replies else ("",):
            ext = "benchprobe1"
            body = self.body(ext=ext, sender=sender, text=text, reply_to=reply_to, thread="dm-7")
            payload = RawPayload(channel=channel, body=body, headers=dict(self.headers))
            cms = inbound.normalise(channel, payload)
            if len(cms) != 1:
                raise LookupError(f"the generated payload reads back as {len(cms)} messages, not 1")
            cm = cms[0]
            wanted = {
                "external id": (cm.external_id, self.external_id(ext, sender)),
                "author kind": (cm.author.kind, self.identity_kind),
                "text": (cm.text.strip(), self.reads_as(ext, sender, text).strip()),
            }
            try:
                wanted["author"] = (normalise(self.identity_kind, cm.author.value), identity)
            except IdentityError as exc:
                raise LookupError(f"the author reads back as {cm.author.value!r}: {exc}")
            for what, (got, want) in wanted.items():
                if got != want:
                    raise LookupError(f"the generated payload reads back with {what} {got!r}, not {want!r}")
            if reply_to and self.external_id(reply_to, sender) not in cm.reply_keys():
                raise LookupError(f"the generated reply reads back answering {cm.reply_keys()!r}")


class WebhookGenerator(Generator):
    kind = ChannelKind.WEBHOOK
    identity_kind = "email"
    replies = True

    def __init__(self) -> None:
        self.headers = {}

    def author(self, n: int) -> str:
        return f"customer{n}@bench.example"

    def body(self, *, ext: str, sender: Sender, text: str, reply_to: str, thread: str) -> bytes:
        message: dict[str, Any] = {
            "id": ext,
            "text": text,
            "author": {"kind": sender.identity_kind, "value": sender.value, "name": sender.name},
            "sent_at": timezone.now().isoformat(),
        }
        if reply_to:
            message["in_reply_to"] = reply_to
        if thread:
            message["thread_id"] = thread
        if "order" in text:
            message["subject"] = text.split(".")[0][:80]
        return json.dumps({"event": "message", "id": f"evt-{ext}", "message": message}).encode()


DROP = object()  # a field value in a JSON template: remove the key (form and email templates set values only)


@dataclass(frozen=True)
class Template:
    """One connector's traffic: which of its own fixtures is the template, and where each
    generated value goes in it.

    `fields` (and `replies`, set only when the message answers the sender's previous one) map
    a place in the fixture to a value. The place is a dotted path into a JSON fixture (list
    indexes as numbers), a key of a form-encoded one, or a header or a body part's MIME type
    ("text/plain") of an email. The value is a str.format pattern over the slots (see
    `FixtureGenerator.slots`), a JSON value whose strings are such patterns, a callable of the
    slots, or DROP. Values are encoded as the format wants them (JSON escapes, %2B in a form,
    quoted-printable and RFC 2047 in mail), never pasted into the raw bytes."""

    fixture: str
    identity_kind: str
    author: Callable[[int], str]  # the n-th sender's identity, as the platform writes it
    fields: dict[str, Any]
    replies: dict[str, Any] = field(default_factory=dict)
    # A list of events (dotted path, "" for the body itself) cut down to the one at an index:
    # pollers store pages of notifications, the bench delivers one message per payload.
    keep: tuple[str, int] | None = None
    external_id: str = "{ext}"  # how the platform's id is built from the generated one
    text: str = "{text}"  # what the normaliser reads back
    event: str = ""  # X-Rapport-Event, which the platform's URL gives (Twilio)


def _mobile(n: int) -> str:
    """A UK mobile number (+44 74xx: valid for phonenumbers), one per sender."""
    return f"+4474{n % 10**8:08d}"


def _mastodon_author(n: int) -> str:
    return f"cust{n}@{('mastodon.social', 'fosstodon.org', 'hachyderm.io')[n % 3]}"


_WA = "entry.0.changes.0.value."
_FB = "entry.0.messaging.0."
_IG = "entry.0.changes.0.value."
_TW = "tweet_create_events.0."
_TOOT = '<p><span class="h-card"><a href="https://mastodon.social/@acme" class="u-url mention">@<span>acme</span></a></span> {html}</p>'

# One template per connector, chosen by name: an ordinary customer message in the platform's
# documented format, never a hostile or broken fixture (alphabetical order would pick email's
# broken_mime.eml). Attachments are dropped where a fixture has one, except on the letter:
# most social messages are text.
TEMPLATES: dict[str, Template] = {
    ChannelKind.EMAIL: Template(
        "simple.eml",
        "email",
        lambda n: f"customer{n}@bench.example",
        {
            "Return-Path": "<{author}>",
            "From": "{mailbox}",
            "Subject": "{subject}",
            "Date": "{rfc2822}",
            "Message-ID": "<{id}>",
            "text/plain": "{text}\n",
            "text/html": "<p>{html}</p>\n",
        },
        replies={"Subject": "Re: {subject}", "In-Reply-To": "<{reply}>", "References": "<{reply}>"},
        external_id="{ext}@mail.bench.example",
    ),
    # The widget's message event from a visitor who gave an email address: an anonymous
    # visitor has no identity the pipeline could resolve. The visitor id comes from the
    # widget's token; the external id is visitor + the widget's client id.
    ChannelKind.CHAT: Template(
        "message_with_email.json",
        "email",
        lambda n: f"customer{n}@bench.example",
        {
            "visitor": "{visitor}",
            "client_id": "{ext}",
            "text": "{text}",
            "email": "{author}",
            "name": "{name}",
        },
        external_id="{visitor}:{ext}",
    ),
    ChannelKind.X: Template(
        "tweet_create_mention.json",
        "x",
        lambda n: f"cust_{n}",
        {
            _TW + "id_str": "{ext}",
            _TW + "created_at": "{twitter_time}",
            _TW + "timestamp_ms": "{millis}",
            _TW + "text": "@AcmeSupport {text}",
            _TW + "user": {
                "id": lambda s: int(s["uid"]),
                "id_str": "{uid}",
                "name": "{name}",
                "screen_name": "{author}",
                "followers_count": 120,
                "verified": False,
            },
        },
        replies={
            _TW + "in_reply_to_status_id_str": "{reply}",
            _TW + "in_reply_to_user_id": lambda s: int(s["uid"]),
            _TW + "in_reply_to_user_id_str": "{uid}",
            _TW + "in_reply_to_screen_name": "{author}",
        },
        text="@AcmeSupport {text}",
    ),
    # The poller's page of notifications, cut down to its public mention.
    ChannelKind.MASTODON: Template(
        "notifications.json",
        "mastodon",
        _mastodon_author,
        {
            "0.id": "n{ext}",
            "0.created_at": "{iso}",
            "0.account": {
                "id": "{uid}",
                "username": "{user}",
                "acct": "{author}",
                "display_name": "{name}",
                "url": "https://{host}/@{user}",
            },
            "0.status.id": "{ext}",
            "0.status.created_at": "{iso}",
            "0.status.uri": "https://{host}/users/{user}/statuses/{ext}",
            "0.status.url": "https://{host}/@{user}/{ext}",
            "0.status.content": _TOOT,
            "0.status.media_attachments": [],
            "0.status.account": {"id": "{uid}", "acct": "{author}"},
        },
        replies={"0.status.in_reply_to_id": "{reply}", "0.status.in_reply_to_account_id": "{uid}"},
        keep=("", 0),
        text="@acme {text}",
    ),
    # The poller's page, cut down to its mention (the reply in it answers our own posts).
    ChannelKind.BLUESKY: Template(
        "notifications.json",
        "bluesky",
        lambda n: f"cust{n}.bsky.social",
        {
            "notifications.0.uri": "{id}",
            "notifications.0.author": {"did": "{did}", "handle": "{author}", "displayName": "{name}"},
            "notifications.0.record.text": "@acme.bsky.social {text}",
            "notifications.0.record.createdAt": "{iso}",
            "notifications.0.indexedAt": "{iso}",
        },
        replies={
            "notifications.0.record.reply": {
                "root": {"uri": "{reply}", "cid": "bafyreibenchroot"},
                "parent": {"uri": "{reply}", "cid": "bafyreibenchparent"},
            }
        },
        keep=("notifications", 1),
        external_id="at://{did}/app.bsky.feed.post/{ext}",
        text="@acme.bsky.social {text}",
    ),
    ChannelKind.FACEBOOK: Template(
        "messenger_message.json",
        "facebook",
        lambda n: str(6_500_000_000_000_000 + n),  # a page-scoped id (PSID)
        {
            "entry.0.time": lambda s: int(s["millis"]),
            _FB + "sender.id": "{author}",
            _FB + "timestamp": lambda s: int(s["millis"]),
            _FB + "message.mid": "{ext}",
            _FB + "message.text": "{text}",
            _FB + "message.attachments": DROP,
        },
        replies={_FB + "message.reply_to": {"mid": "{reply}"}},
    ),
    # A comment under one of our posts: the author is the commenter's username.
    ChannelKind.INSTAGRAM: Template(
        "comment.json",
        "instagram",
        lambda n: f"cust.{n}",
        {
            "entry.0.time": lambda s: int(s["unix"]),
            _IG + "from": {"id": "{uid}", "username": "{author}"},
            _IG + "id": "{ext}",
            _IG + "text": "{text}",
        },
        replies={_IG + "parent_id": "{reply}"},
    ),
    ChannelKind.WHATSAPP: Template(
        "text.json",
        "phone",
        _mobile,
        {
            _WA + "contacts": [{"profile": {"name": "{name}"}, "wa_id": "{digits}"}],
            _WA + "messages.0.from": "{digits}",  # wa_id: the number without "+"
            _WA + "messages.0.id": "{ext}",
            _WA + "messages.0.timestamp": "{unix}",
            _WA + "messages.0.text.body": "{text}",
        },
        replies={_WA + "messages.0.context": {"from": "{digits}", "id": "{reply}"}},
    ),
    ChannelKind.SMS: Template(
        "sms.form",
        "phone",
        _mobile,
        {
            "SmsMessageSid": "{ext}",
            "SmsSid": "{ext}",
            "MessageSid": "{ext}",
            "From": "{author}",
            "Body": "{text}",
        },
        event="sms",
    ),
    # A finished inbound call (Twilio's status callback): the connector logs it as one
    # message summarising the call, with its Call row. The customer's words are not in it:
    # the text is the connector's summary of the call's length.
    ChannelKind.PHONE: Template(
        "call_status_completed.form",
        "phone",
        _mobile,
        {
            "CallSid": "{ext}",
            "From": "{author}",
            "Caller": "{author}",
            "CallDuration": "{call_s}",
            "Duration": "{call_billed_min}",
            "Timestamp": "{rfc2822}",
        },
        event="call.status",
        text="Inbound call: answered, {call_min} min {call_sec} s",
    ),
}


def _set(data: Any, path: str, value: Any) -> Any:
    """`data` with the value at a dotted path set (or removed, for DROP); "" is the root."""
    if not path:
        return value
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DROP:
        node.pop(last, None)
    else:
        node[last] = value
    return data


def _get(data: Any, path: str) -> Any:
    for key in path.split(".") if path else []:
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def _fill(value: Any, slots: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**slots)
    if isinstance(value, dict):
        return {k: _fill(v, slots) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, slots) for v in value]
    if callable(value):
        return value(slots)
    return value


class FixtureGenerator(Generator):
    """Any other connector: one of its own fixtures (the platform's documented format), chosen
    in TEMPLATES, is the template; the external id, the author and the text (and the fields
    that go with them: names, user ids, times, reply references) are set in the decoded
    fixture, which is then encoded again as the platform sends it."""

    def __init__(self, kind: str):
        from rapport.channels import registry

        self.kind = kind
        spec = TEMPLATES.get(kind)
        if spec is None:
            raise LookupError(f"no template is chosen for {kind} (add one to TEMPLATES)")
        self.spec = spec
        self.identity_kind = spec.identity_kind
        self.replies = bool(spec.replies)
        self.headers = {"X-Rapport-Event": spec.event} if spec.event else {}
        inbound = registry.inbound(kind)
        assert inbound.__file__ is not None, f"the {kind} connector is not a file-backed module"
        raw = (Path(inbound.__file__).parent / "fixtures" / spec.fixture).read_bytes()
        self.format = Path(spec.fixture).suffix.lstrip(".")
        if self.format == "json":
            data = json.loads(raw)
            if spec.keep is not None:
                path, index = spec.keep
                data = _set(data, path, [_get(data, path)[index]])
            self._json = json.dumps(data)
        elif self.format == "form":
            self._form = parse_qsl(raw.decode().strip(), keep_blank_values=True)
        elif self.format == "eml":
            self._mail = BytesParser(policy=mail_policy.default).parsebytes(raw)
        else:
            raise LookupError(f"no reader for the {kind} fixture {spec.fixture}")

    def author(self, n: int) -> str:
        return self.spec.author(n)

    def _base(self, ext: str, sender: Sender) -> dict[str, str]:
        user, _, host = sender.value.partition("@")
        return {
            "ext": ext,
            "author": sender.value,
            "uid": str(2_000_000_000 + sender.n),
            "did": f"did:plc:bench{sender.n:016d}",
            "visitor": f"bench-v{sender.n}",
            "user": user,
            "host": host,
        }

    def external_id(self, ext: str, sender: Sender) -> str:
        return self.spec.external_id.format(**self._base(ext, sender))

    def slots(self, ext: str, sender: Sender, text: str, reply_to: str) -> dict[str, str]:
        now = timezone.now()
        # A call's length, spread over 15 s to 15 min, fixed by the message.
        call = 15 + zlib.crc32(ext.encode()) % 900
        return {
            **self._base(ext, sender),
            "id": self.external_id(ext, sender),
            "reply": self.external_id(reply_to, sender) if reply_to else "",
            "digits": sender.value.lstrip("+"),
            "name": sender.name,
            "mailbox": formataddr((sender.name, sender.value), charset="utf-8"),
            "text": text,
            "html": html.escape(text, quote=False),
            "subject": re.split(r"(?<=[.?!])\s", text, maxsplit=1)[0][:80],
            "iso": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "unix": str(int(now.timestamp())),
            "millis": str(int(now.timestamp() * 1000)),
            "rfc2822": format_datetime(now),
            "twitter_time": now.strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "call_s": str(call),
            "call_min": str(call // 60),
            "call_sec": f"{call % 60:02d}",
            "call_billed_min": str(-(-call // 60)),
        }

    def reads_as(self, ext: str, sender: Sender, text: str) -> str:
        return self.spec.text.format(**self.slots(ext, sender, text, ""))

    def body(self, *, ext: str, sender: Sender, text: str, reply_to: str, thread: str) -> bytes:
        slots = self.slots(ext, sender, text, reply_to)
        values = {**self.spec.fields, **(self.spec.replies if reply_to else {})}
        if self.format == "json":
            data = json.loads(self._json)
            for path, value in values.items():
                data = _set(data, path, _fill(value, slots))
            return json.dumps(data).encode()
        if self.format == "form":
            form = dict(self._form)  # keeps the fixture's order; new keys go last
            form.update({key: _fill(value, slots) for key, value in values.items()})
            return urlencode(form).encode()
        mail = copy.deepcopy(self._mail)
        for name, value in values.items():
            filled = _fill(value, slots)
            if "/" in name:  # a body part, by MIME type: its content and encoding set anew
                part = next(p for p in mail.walk() if p.get_content_type() == name and not p.is_attachment())
                base64 = str(part.get("Content-Transfer-Encoding", "")).lower() == "base64"
                # MIMEPart's, not EmailMessage's: a body part has no MIME-Version header.
                MIMEPart.set_content(
                    part,
                    filled,
                    subtype=name.split("/")[1],
                    charset="utf-8",
                    cte="base64" if base64 else "quoted-printable",
                )
            elif name in mail:
                mail.replace_header(name, filled)
            else:
                mail[name] = filled
        return mail.as_bytes()


def _generators(channels: dict[str, Channel], stdout: Any) -> list[Generator]:
    """A generator for every channel kind whose generated payloads read back as meant; any
    other kind is left out, and the run says why."""
    from rapport.channels import registry

    found: list[Generator] = []
    for kind in ChannelKind.values:
        try:
            if not registry.has_connector(kind):
                raise LookupError("no connector is installed")
            gen = WebhookGenerator() if kind == ChannelKind.WEBHOOK else FixtureGenerator(kind)
            gen.check(channels[kind])
        except Exception as exc:  # noqa: BLE001 - a connector in progress is left out, and said so
            _write(stdout, f"  {kind}: left out ({type(exc).__name__}: {str(exc)[:160]})")
            continue
        found.append(gen)
    return found


# --- set-up ---------------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"  # noqa: S105 - a scratch database's test channel


def _teams_and_agents() -> tuple[Any, Any, list[Any]]:
    from rapport.accounts.models import Role, Team, User

    north = Team.objects.get_or_create(name="North")[0]
    south = Team.objects.get_or_create(name="South")[0]
    agents = []
    for i, team in enumerate([north, north, south, south]):
        user = User.objects.filter(username=f"bench-agent-{i + 1}").first()
        if user is None:
            user = User(
                username=f"bench-agent-{i + 1}", first_name="Agent", last_name=str(i + 1), role=Role.SERVICE
            )
            user.set_unusable_password()
            user.save()
            user.teams.add(team)
        agents.append(user)
    return north, south, agents


def _channel_name(kind: str) -> str:
    return f"Bench {kind}"


def _channels(north: Any, south: Any) -> dict[str, Channel]:
    channels = {}
    for i, kind in enumerate(ChannelKind.values):
        channel = Channel.objects.filter(kind=kind, name=_channel_name(kind)).first()
        if channel is None:
            channel = Channel(kind=kind, name=_channel_name(kind), team=north if i % 2 == 0 else south)
            channel.credentials = {"secret": WEBHOOK_SECRET} if kind == ChannelKind.WEBHOOK else {}
            channel.save()
        channels[kind] = channel
    return channels


def _rules(south: Any) -> None:
    from rapport.conversations.models import AssignMode, Priority, RoutingRule

    if RoutingRule.objects.filter(name__startswith="Bench:").exists():
        return
    RoutingRule.objects.create(
        name="Bench: urgent complaints",
        position=1,
        stop=False,
        urgencies=["high"],
        set_priority=Priority.HIGH,
        add_tags=["urgent"],
    )
    RoutingRule.objects.create(
        name="Bench: billing desk",
        position=2,
        words=["invoice", "refund", "price"],
        assign_mode=AssignMode.FEWEST_OPEN,
        assign_team=south,
    )


def _known_people(senders: list[Sender], agents: list[Any], bot: Any) -> None:
    """Half the senders are already in the CRM (some with an account owner); the pipeline
    creates the others as needs-review people on their first message."""
    from rapport.core.models import Visibility
    from rapport.people.identities import IdentityError, normalise
    from rapport.people.models import Identity, Person, Source

    known = []
    for s in senders:
        if s.n % 2:
            continue
        try:
            known.append((s, normalise(s.identity_kind, s.value)))
        except IdentityError:
            continue  # an identity the CRM cannot hold: the pipeline will not resolve it either
    people = []
    for s, _ in known:
        first, _, last = s.name.partition(" ")
        agent = agents[s.n % len(agents)] if s.n % 4 == 0 else None
        person = Person(
            first_name=first,
            last_name=last,
            owner=agent or bot,
            team=agent.teams.first() if agent else None,
            visibility=Visibility.EVERYONE,
            source=Source.MANUAL,
            is_vip=s.n % 50 == 0,
        )
        person.refresh_keys()
        people.append(person)
    Person.objects.bulk_create(people, batch_size=2000)
    Identity.objects.bulk_create(
        [
            Identity(person=p, kind=s.identity_kind, value=value, is_primary=True)
            for p, (s, value) in zip(people, known, strict=True)
        ],
        batch_size=2000,
    )


# --- the ingest benchmark -------------------------------------------------------------------


def _plan(messages: int, generators: list[Generator], channels: dict[str, Channel], rng: random.Random):
    """Senders and the deliveries, in delivery order, each message twice."""
    from rapport.bench import vocab

    firsts = [f for _, _, fs, _ in vocab.NAMES.values() for f, _ in fs]
    lasts = [last for _, _, _, ls in vocab.NAMES.values() for last, _ in ls]
    n_people = max(1, messages // 10)
    senders = []
    for n in range(n_people):
        gen = generators[n % len(generators)]
        name = f"{rng.choice(firsts)} {rng.choice(lasts)}"
        senders.append(Sender(n, gen.kind, gen.identity_kind, gen.author(n), name))
    by_kind = {g.kind: g for g in generators}
    last_ext: dict[int, str] = {}
    expected: list[tuple[int, str]] = []
    slots: list[tuple[float, Delivery]] = []
    for i in range(messages):
        sender = senders[rng.randrange(n_people)]
        gen = by_kind[sender.kind]
        channel = channels[sender.kind]
        ext = f"bench-{i}-{rng.randrange(10**9)}"
        roll = rng.random()
        pool = ANGRY if roll < 0.2 else HAPPY if roll > 0.85 else QUESTIONS
        text = rng.choice(pool).format(n=1000 + i)
        reply_to = last_ext.get(sender.n, "") if rng.random() < 0.3 else ""
        thread = f"dm-{sender.n}" if sender.kind != ChannelKind.WEBHOOK or rng.random() < 0.2 else ""
        body = gen.body(ext=ext, sender=sender, text=text, reply_to=reply_to, thread=thread)
        last_ext[sender.n] = ext
        expected.append((channel.pk, gen.external_id(ext, sender)))
        slots.append((i, Delivery(channel, body, f"evt-{ext}", gen.headers)))
        # The second delivery comes a little later: the same delivery retried, or the same
        # message in another event.
        again = f"evt-{ext}" if i % 2 == 0 else f"evt-{ext}-again"
        slots.append((i + rng.uniform(1, 50), Delivery(channel, body, again, gen.headers)))
    slots.sort(key=lambda s: s[0])
    return senders, [d for _, d in slots], expected


def _receive(delivery: Delivery) -> None:
    """What a webhook view does once the request is read: verify, then store durably."""
    from rapport.channels.actions import payload_store
    from rapport.channels.connectors.webhook import signing

    if delivery.channel.kind == ChannelKind.WEBHOOK:
        headers = signing.sign(WEBHOOK_SECRET, delivery.body)
        signing.verify(
            WEBHOOK_SECRET, delivery.body, headers["X-Rapport-Timestamp"], headers["X-Rapport-Signature"]
        )
    payload_store(
        channel=delivery.channel,
        body=delivery.body,
        headers=delivery.headers,
        delivery_id=delivery.delivery_id,
    )


def _worker(done_receiving: Any, counter: Any, stats: Any) -> None:
    """A worker process: drain pending payloads in batches until the receiver is done and
    nothing is left, as `rapport inbox_worker` does (parsing the next batch in a second
    process while storing this one). Adds its CPU seconds (its parse-ahead process's
    included), its seconds in storing transactions and its batches to `stats`."""
    import resource

    from rapport.conversations.ingest import has_pending, run_worker

    connections.close_all()
    # RAPPORT_BENCH_PROFILE=<file>: the worker runs under cProfile and dumps its stats there
    # (the worker is a forked process, out of reach of a profiler around the command).
    profile_to = os.environ.get("RAPPORT_BENCH_PROFILE")
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0 = time.process_time()

    def on_batch(result: Any) -> None:
        with counter.get_lock():
            counter.value += result.created
        with stats.get_lock():
            stats[1] += result.write_s
            stats[2] += 1
            stats[3] += result.planned

    def keep_going() -> bool:
        return not done_receiving.is_set() or has_pending()

    # Less than a batch pending: let one build up, since SQLite has one writer and every
    # short transaction makes the receiver wait for the lock (in the busy handler's sleeps).
    run_worker(keep_going=keep_going, parse_ahead=PARSE_AHEAD, pause=WORKER_PAUSE, on_batch=on_batch)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stats.get_lock():
        stats[0] += time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{os.getpid()}")
    connections.close_all()


def _file_database() -> bool:
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return True
    name = str(db.get("NAME") or "")
    return (
        bool(name)
        and name != ":memory:"
        and not name.startswith("file:memorydb")
        and "mode=memory" not in name
    )


def _bench_messages() -> Any:
    """The messages the bench sent: the inbound ones in its own channels. Not told apart by an
    external id prefix: the platforms shape their ids (a Bluesky post's is its at:// URI)."""
    from rapport.conversations.models import Direction, Message

    names = [_channel_name(kind) for kind in ChannelKind.values]
    return Message.objects.filter(channel__name__in=names, direction=Direction.INBOUND)


def _check(expected: list[tuple[int, str]]) -> dict[str, int]:
    stored: dict[tuple[int, str], int] = {}
    rows = _bench_messages().values_list("channel_id", "external_id").annotate(n=Count("id"))
    for channel_id, ext, n in rows:
        stored[(channel_id, ext)] = n
    lost = sum(1 for key in expected if key not in stored)
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    unexpected = len(set(stored) - set(expected))
    return {"lost": lost, "duplicated": duplicated, "unexpected": unexpected}


def _lags_ms() -> list[float]:
    """Receive (payload stored) → routed (the batch that stored the message finished)."""
    lags = []
    for received, processed in (
        _bench_messages()
        .filter(raw_payload__isnull=False)
        .values_list("raw_payload__received_at", "raw_payload__processed_at")
    ):
        if received and processed:
            lags.append((processed - received).total_seconds() * 1000)
    return lags


def _receiver(deliveries: list[Delivery], cpu: Any) -> None:
    """A receiver process: what one web server process does with its share of the webhooks."""
    connections.close_all()
    start = time.process_time()
    for d in deliveries:
        _receive(d)
    with cpu.get_lock():
        cpu.value += time.process_time() - start
    connections.close_all()


def run(
    *, messages: int, stdout: Any, seed: int = 1, workers: int = 1, receivers: int | None = None
) -> dict[str, Any]:
    if messages < 1:
        raise ValueError("messages must be at least 1")
    if receivers is None:
        # One receiver process by default. RAPPORT_BENCH_RECEIVERS=2 answers the webhooks from
        # two processes, as a web server with two workers would; on SQLite they then also
        # wait for each other's write lock, so it is not faster on two cores.
        receivers = max(1, int(os.environ.get("RAPPORT_BENCH_RECEIVERS") or 1))
    if _app_database():
        path = (Path(settings.VAR_DIR) / f"bench-ingest-{messages}.sqlite3").resolve()
        return _in_scratch("ingest", ["--messages", str(messages)], path, stdout)
    from rapport.conversations.ingest import process_batch, system_user
    from rapport.conversations.models import Conversation, Message
    from rapport.people.models import Person

    if Message.objects.exclude(pk__in=_bench_messages().values("pk")).exists():
        raise SystemExit(
            "This database has real messages; run the benchmark on a scratch database "
            "(rapport bench ingest makes one by default)."
        )
    rng = random.Random(seed)
    _write(stdout, f"Preparing {messages:,} messages…")
    north, south, agents = _teams_and_agents()
    channels = _channels(north, south)
    _rules(south)
    system_user()
    generators = _generators(channels, stdout)
    senders, deliveries, expected = _plan(messages, generators, channels, rng)
    _known_people(senders, agents, system_user())
    people_before = Person.objects.count()
    kinds = sorted({g.kind for g in generators})
    _write(stdout, f"  channels: {', '.join(kinds)}; {len(senders):,} people; {len(deliveries):,} deliveries")

    # Worker processes only see committed rows: inside a transaction (the test suite) the
    # benchmark runs in this process instead.
    concurrent = _file_database() and workers > 0 and not connection.in_atomic_block
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    work = [0.0, 0.0, 0, 0]  # worker CPU s, seconds in storing transactions, batches, planned
    if concurrent:
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        done_receiving = ctx.Event()
        counter = ctx.Value("q", 0)
        stats = ctx.Array("d", 4)  # worker CPU s, seconds in storing transactions, batches, planned
        procs = [ctx.Process(target=_worker, args=(done_receiving, counter, stats)) for _ in range(workers)]
        for p in procs:
            p.start()
        try:
            if receivers > 1:
                cpu = ctx.Value("d", 0.0)
                # Delivery order is kept within each receiver's share; between them, it is
                # as concurrent as the platform's webhooks are.
                shares = [
                    ctx.Process(target=_receiver, args=(deliveries[i::receivers], cpu))
                    for i in range(receivers)
                ]
                for p in shares:
                    p.start()
                for p in shares:
                    p.join()
                if any(p.exitcode for p in shares):
                    raise SystemExit("A receiver process failed; see the log above.")
                receive_cpu = cpu.value
            else:
                for d in deliveries:
                    _receive(d)
                receive_cpu = time.process_time() - cpu0
            receive_s = time.perf_counter() - t0
        finally:
            done_receiving.set()
            for p in procs:
                p.join()
        if any(p.exitcode for p in procs):
            raise SystemExit("A worker process failed; see the log above.")
        work = [stats[0], stats[1], int(stats[2]), int(stats[3])]
    else:
        receive_cpu = 0.0
        for start in range(0, len(deliveries), RECEIVE_CHUNK):
            c = time.process_time()
            for d in deliveries[start : start + RECEIVE_CHUNK]:
                _receive(d)
            receive_cpu += time.process_time() - c
            c = time.process_time()
            while (batch := process_batch()).fetched:
                work[1] += batch.write_s
                work[2] += 1
                work[3] += batch.planned
            work[0] += time.process_time() - c
        receive_s = time.perf_counter() - t0
    seconds = time.perf_counter() - t0

    checks = _check(expected)
    lags = _lags_ms()
    statuses = dict(RawPayload.objects.values_list("status").annotate(n=Count("id")))
    figures = {
        "suite": "ingest",
        "messages": messages,
        "people": len(senders),
        "deliveries": len(deliveries),
        "channels": kinds,
        "seconds": round(seconds, 2),
        "messages_per_s": round(messages / seconds) if seconds else 0,
        "deliveries_per_s": round(len(deliveries) / receive_s) if receive_s else 0,
        "p50_lag_ms": round(_percentile(lags, 50), 1),
        "p95_lag_ms": round(_percentile(lags, 95), 1),
        # Where the time went: CPU seconds of the receiver and of the worker(s), and the
        # seconds the workers spent in storing transactions (on SQLite: holding the one
        # write lock the receiver needs too).
        "receiver_cpu_s": round(receive_cpu, 2),
        "worker_cpu_s": round(work[0], 2),
        "write_lock_s": round(work[1], 2),
        "batches": work[2],
        # Batches stored from a plan made outside the write lock (the rest: the classic path,
        # every read under the lock; on PostgreSQL always).
        "planned_batches": work[3],
        "lost": checks["lost"],
        "duplicated": checks["duplicated"],
        "unexpected": checks["unexpected"],
        "payloads_pending": statuses.get(PayloadStatus.RECEIVED, 0),
        "payloads_dead": statuses.get(PayloadStatus.DEAD, 0),
        "people_created": Person.objects.count() - people_before,
        "conversations": Conversation.objects.count(),
        "mode": f"{receivers} receiver + {workers} worker processes"
        if concurrent
        else "one process, interleaved",
        "database": connection.vendor,
    }
    table = [
        ("messages (each delivered twice)", f"{messages:,}"),
        ("people", f"{len(senders):,}"),
        ("channels", ", ".join(kinds)),
        ("mode", figures["mode"]),
        ("seconds", f"{seconds:.2f}"),
        ("messages/s", f"{figures['messages_per_s']:,}"),
        ("deliveries/s received", f"{figures['deliveries_per_s']:,}"),
        ("lag p50 / p95 ms", f"{figures['p50_lag_ms']:,} / {figures['p95_lag_ms']:,}"),
        ("CPU s receiver / worker", f"{receive_cpu:.2f} / {work[0]:.2f}"),
        ("storing transactions s (batches, planned)", f"{work[1]:.2f} ({work[2]}, {work[3]})"),
        ("lost", str(checks["lost"])),
        ("duplicated", str(checks["duplicated"])),
        ("payloads pending / dead", f"{figures['payloads_pending']} / {figures['payloads_dead']}"),
        ("people created by the pipeline", f"{figures['people_created']:,}"),
        ("conversations", f"{figures['conversations']:,}"),
    ]
    width = max(len(k) for k, _ in table)
    _write(stdout, "\n".join(f"{k.ljust(width)}  {v}" for k, v in table))
    _write(stdout, json.dumps(figures, separators=(",", ":")))
    return figures
