"""`rapport bench ingest`: the inbox's ingestion benchmark.

N generated messages from about N/10 people go through the real pipeline, end to end: each
delivery is verified (signed webhook) and stored as a RawPayload by the same function the
webhook views use, then a worker process drains the pending payloads in batches (normalise
with the connector's real normaliser → store idempotently → resolve identity → thread →
score → route → notify). Connectors other than the generic webhook are driven from one of
their own fixtures (the platform's documented format) used as a template; a connector whose
fixtures cannot serve is left out, and the run says so. Every message is delivered twice:
half of the second deliveries repeat the delivery id (the platform retrying), half come with
a new one (the same message in another event), so both the payload-level and the
message-level deduplication are exercised. Afterwards the store is checked: every message
present once (`lost`, `duplicated`), every payload processed. The receiver runs in this
process and the worker in another (two cores).

It refuses the application's own database: by default it creates a fresh scratch SQLite
file under var/ and re-runs itself against it (or set DATABASE_URL to a scratch database)."""

import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.db import connection, connections
from django.db.models import Count
from django.utils import timezone

from rapport.channels.models import Channel, ChannelKind, PayloadStatus, RawPayload

RECEIVE_CHUNK = 200
WORKER_PAUSE = 0.2  # seconds a worker waits when there is less than a batch pending

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
    """Builds raw platform payloads for one channel kind and checks, once, that the real
    normaliser reads them back as the message meant."""

    kind: str
    identity_kind: str

    def author(self, n: int) -> str:
        raise NotImplementedError

    def body(self, *, ext: str, sender: Sender, text: str, reply_to: str, thread: str) -> bytes:
        raise NotImplementedError


class WebhookGenerator(Generator):
    kind = ChannelKind.WEBHOOK
    identity_kind = "email"

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


class FixtureGenerator(Generator):
    """Any other connector: one of its own fixtures (the platform's documented format) is the
    template; the external id, the author and the text are replaced in the raw body."""

    def __init__(self, kind: str, channel: Channel):
        from rapport.channels import registry

        self.kind = kind
        inbound = registry.inbound(kind)
        assert inbound.__file__ is not None, f"the {kind} connector is not a file-backed module"
        folder = Path(inbound.__file__).parent / "fixtures"
        template: tuple[str, str, str, str, str] | None = None
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            raw = path.read_bytes()
            try:
                cms = inbound.normalise(channel, RawPayload(channel=channel, body=raw, headers={}))
            except Exception:  # noqa: BLE001, S112 - an unusable fixture is simply not a template
                continue
            if len(cms) != 1:
                continue
            cm = cms[0]
            body = raw.decode("utf-8", errors="replace")
            author = cm.author.value.lstrip("@")
            if not (cm.external_id and cm.external_id in body and author and author in body):
                continue
            text = cm.text if cm.text and cm.text in body else ""
            template = (body, cm.external_id, author, text, cm.author.kind)
            break
        if template is None:
            raise LookupError(f"no single-message fixture usable as a template for {kind}")
        self.template = template
        self.identity_kind = self.template[4]
        self._inbound = inbound

    def author(self, n: int) -> str:
        _, _, author, _, _ = self.template
        if author.startswith("+") and author[1:].isdigit():
            return f"+4930{50000000 + n}"
        if author.isdigit():
            return str(10**12 + n)
        if "@" in author:
            return f"customer{n}@bench.example"
        return f"bc{n}"

    def body(self, *, ext: str, sender: Sender, text: str, reply_to: str, thread: str) -> bytes:
        body, old_ext, old_author, old_text, _ = self.template
        out = body.replace(old_ext, ext).replace(old_author, sender.value)
        if old_text:
            out = out.replace(old_text, text)
        return out.encode()


def _generators(channels: dict[str, Channel], stdout: Any) -> list[Generator]:
    from rapport.channels import registry

    found: list[Generator] = [WebhookGenerator()]
    for kind in dict.fromkeys(registry.CONNECTORS):
        if kind == ChannelKind.WEBHOOK:
            continue
        if not registry.has_connector(kind):
            continue
        try:
            gen = FixtureGenerator(kind, channels[kind])
            probe = Sender(0, kind, gen.identity_kind, gen.author(7), "Probe")
            cms = gen._inbound.normalise(
                channels[kind],
                RawPayload(
                    channel=channels[kind],
                    body=gen.body(ext="benchprobe1", sender=probe, text="probe text", reply_to="", thread=""),
                    headers={},
                ),
            )
            if len(cms) != 1 or "benchprobe1" not in cms[0].external_id:
                raise LookupError("the generated payload does not read back")
        except Exception as exc:  # noqa: BLE001 - a connector in progress is left out, and said so
            _write(stdout, f"  {kind}: left out ({type(exc).__name__}: {str(exc)[:120]})")
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


def _channels(north: Any, south: Any) -> dict[str, Channel]:
    channels = {}
    for i, kind in enumerate(ChannelKind.values):
        channel = Channel.objects.filter(kind=kind, name=f"Bench {kind}").first()
        if channel is None:
            channel = Channel(kind=kind, name=f"Bench {kind}", team=north if i % 2 == 0 else south)
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
        expected.append((channel.pk, ext))
        slots.append((i, Delivery(channel, body, f"evt-{ext}", {})))
        # The second delivery comes a little later: the same delivery retried, or the same
        # message in another event.
        again = f"evt-{ext}" if i % 2 == 0 else f"evt-{ext}-again"
        slots.append((i + rng.uniform(1, 50), Delivery(channel, body, again, {})))
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
    payload_store(channel=delivery.channel, body=delivery.body, headers={}, delivery_id=delivery.delivery_id)


def _pending() -> int:
    return RawPayload.objects.filter(status=PayloadStatus.RECEIVED).count()


def _worker(done_receiving: Any, counter: Any, stats: Any) -> None:
    """A worker process: drain pending payloads in batches until the receiver is done and
    nothing is left. Adds its CPU seconds, its seconds in storing transactions and its
    batches to `stats`."""
    from rapport.conversations.ingest import BATCH_SIZE, process_batch

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
    while True:
        result = process_batch()
        with counter.get_lock():
            counter.value += result.created
        if result.fetched:
            with stats.get_lock():
                stats[1] += result.write_s
                stats[2] += 1
                stats[3] += result.planned
        if result.fetched >= BATCH_SIZE:
            continue  # a backlog: keep going
        if not result.fetched and done_receiving.is_set() and not _pending():
            break
        # Let a batch build up: SQLite has one writer, and every short transaction makes the
        # receiver wait for the lock (in the busy handler's coarse sleeps).
        time.sleep(WORKER_PAUSE)
    with stats.get_lock():
        stats[0] += time.process_time() - cpu0
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


def _check(expected: list[tuple[int, str]]) -> dict[str, int]:
    from rapport.conversations.models import Message

    stored: dict[tuple[int, str], int] = {}
    rows = (
        Message.objects.filter(external_id__startswith="bench-")
        .values_list("channel_id", "external_id")
        .annotate(n=Count("id"))
    )
    for channel_id, ext, n in rows:
        stored[(channel_id, ext)] = n
    lost = sum(1 for key in expected if key not in stored)
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    unexpected = len(set(stored) - set(expected))
    return {"lost": lost, "duplicated": duplicated, "unexpected": unexpected}


def _lags_ms() -> list[float]:
    """Receive (payload stored) → routed (the batch that stored the message finished)."""
    from rapport.conversations.models import Message

    lags = []
    for received, processed in Message.objects.filter(
        external_id__startswith="bench-", raw_payload__isnull=False
    ).values_list("raw_payload__received_at", "raw_payload__processed_at"):
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

    if Message.objects.exclude(external_id__startswith="bench-").exists():
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
