"""Realistic, deterministic demo and benchmark data at any scale.

The same arguments and seed give the same people, organisations, deals and activities
(dates are relative to the day of seeding). Rows are written with raw `executemany` in
large batches and explicit ids, bypassing model `save()`, because a million people through
the ORM would take an hour; derived keys are computed here exactly as the models' own
`refresh_keys()` do. Each chunk of people (with their identities, tags and activities) is
committed on its own, so an interrupted run leaves consistent, merely smaller data.

The demo users have a well-known password on purpose: this module only ever runs from
`rapport seed --users`, `rapport demo` and `rapport bench`, never from the application."""

import datetime as dt
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from rapport.accounts.models import Role, Team, User
from rapport.activities.models import Activity
from rapport.bench import vocab
from rapport.core.db import refresh_planner_stats
from rapport.core.text import fold
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    Organisation,
    OrganisationDomain,
    Person,
    Relationship,
    Source,
    Tag,
)
from rapport.sales.actions import pipeline_ensure_default
from rapport.sales.models import Deal, DealParticipant, Order, Product

DEMO_PASSWORD = "rapport-demo"  # noqa: S105 — demo data only, printed to the person running the demo
# username, role, team, first name, last name
DEMO_USERS: list[tuple[str, str, str | None, str, str]] = [
    ("admin", Role.ADMIN, None, "Ada", "Admin"),
    ("maria", Role.SALES, "North", "Maria", "Santos"),
    ("sam", Role.SALES, "South", "Sam", "Okafor"),
    ("mona", Role.MANAGER, "North", "Mona", "Lindqvist"),
    ("sven", Role.SERVICE, "North", "Sven", "Berger"),
    ("rita", Role.READ_ONLY, "North", "Rita", "Moreau"),
]

PEOPLE_CHUNK = 50_000
BATCH = 10_000


class SeedError(Exception):
    """Raised with a message for the person running the command."""


@dataclass
class SeedResult:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def ensure_demo_users() -> dict[str, User]:
    """Create the demo users and teams if missing. Existing users are left as they are (their
    password may have been changed on purpose)."""
    teams = {name: Team.objects.get_or_create(name=name)[0] for name in ("North", "South")}
    users = {}
    for username, role, team, first, last in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                first_name=first,
                last_name=last,
                email=f"{username}@rapport.example",
                is_superuser=role == Role.ADMIN,
                is_staff=role == Role.ADMIN,
            )
            if team:
                user.teams.add(teams[team])
        users[username] = user
    return users


def default_counts(people: int) -> dict[str, int]:
    """Organisations, deals and activities in proportion to the people."""
    return {
        "orgs": max(5, people // 20),
        "deals": max(10, people // 10),
        "activities": people * 2 if people <= 100_000 else people,
    }


# --- raw insertion ---------------------------------------------------------------------


def _column(field: object) -> str:
    # Django types `column` as optional because some fields (reverse relations, non-concrete
    # fields) have none; the ones seeded here always do, and a miss should name the field.
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise SeedError(f"{field} has no database column")
    return column


class _Table:
    """INSERT for one model: the given attnames first, then every other concrete column with
    its model default, so a field added to a model later does not break seeding."""

    def __init__(self, model: type[models.Model], attnames: Sequence[str]):
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(attnames) - set(fields)
        if unknown:
            raise SeedError(f"{model.__name__} has no fields {sorted(unknown)}")
        self.model = model
        self.extra = [
            (_column(f), f.get_db_prep_save(f.get_default(), connection))
            for name, f in fields.items()
            # A primary key we do not supply is the database's to assign (NULL works as
            # "assign" on SQLite only; PostgreSQL needs the column left out).
            if name not in attnames and not f.primary_key
        ]
        columns = [_column(fields[a]) for a in attnames] + [c for c, _ in self.extra]
        self.sql = _insert_sql(model._meta.db_table, columns)
        self.tail = tuple(v for _, v in self.extra)
        self.count = 0

    def insert(self, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.tail:
            rows = [r + self.tail for r in rows]
        _write(self.sql, rows)
        self.count += len(rows)


def _insert_sql(table: str, columns: list[str]) -> tuple[str, str]:
    """The INSERT for executemany, and the COPY that PostgreSQL loads the same rows with."""
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    return (
        f"INSERT INTO {qn(table)} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})",
        f"COPY {qn(table)} ({cols}) FROM STDIN",
    )


def _write(sql: tuple[str, str], rows: list[tuple]) -> None:
    """Rows in batches: executemany on SQLite; COPY on PostgreSQL, where executemany sends
    one statement per row (11,000 rows/s; COPY streams them)."""
    insert, copy_sql = sql
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for i in range(0, len(rows), BATCH):
            cursor.executemany(insert, rows[i : i + BATCH])


class _M2M:
    def __init__(self, through: type[models.Model], left: str, right: str):
        t = through._meta
        self.sql = _insert_sql(t.db_table, [_column(t.get_field(left)), _column(t.get_field(right))])
        self.count = 0

    def insert(self, rows: list[tuple[int, int]]) -> None:
        if rows:
            _write(self.sql, rows)
        self.count += len(rows)


def _next_id(model: type[models.Model]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
        return (cursor.fetchone()[0] or 0) + 1


class _Sqlite:
    """Faster, less durable settings for the seeding connection only, restored afterwards:
    a crash mid-seed loses only demo data that can be seeded again."""

    def __enter__(self):
        # Safety level cannot change inside a transaction (e.g. a test); then seed as is.
        self.active = connection.vendor == "sqlite" and not connection.in_atomic_block
        if self.active:
            with connection.cursor() as c:
                c.execute("PRAGMA synchronous")
                self.sync = c.fetchone()[0]
                c.execute("PRAGMA cache_size")
                self.cache = c.fetchone()[0]
                c.execute("PRAGMA synchronous=OFF")
                c.execute("PRAGMA cache_size=-1000000")
        return self

    def __exit__(self, *exc):
        if self.active:
            with connection.cursor() as c:
                c.execute(f"PRAGMA synchronous={int(self.sync)}")
                c.execute(f"PRAGMA cache_size={int(self.cache)}")
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # A bulk load leaves the planner without statistics for the new rows.
        refresh_planner_stats()


# --- generation ------------------------------------------------------------------------

_PHONE_PATTERNS = {
    # Number ranges that libphonenumber accepts as valid for the region (checked by the tests).
    "GB": [("+4474", 8), ("+4475", 8), ("+4478", 8), ("+44203", 7), ("+44207", 7), ("+44208", 7)],
    "US": [
        (f"+1{area}{exchange}", 4)
        for area in ("212", "415", "617", "312", "206", "512", "303", "404")
        for exchange in ("201", "348", "555", "623", "734", "862", "917")
    ],
    "DE": [("+49151", 8), ("+49152", 8), ("+49157", 8), ("+49170", 8), ("+49176", 8), ("+4930", 8)],
    "FR": [("+3361", 8 - 1), ("+3365", 7), ("+3376", 7), ("+3377", 7), ("+331", 8)],
}
CURRENCY = {"GB": "GBP", "US": "USD", "DE": "EUR", "FR": "EUR"}
LANGUAGE = {
    "en": "en",
    "us": "en",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "it": "it",
    "nordic": "sv",
    "pl": "pl",
    "ar": "ar",
    "zh": "zh",
    "el": "el",
}


class _Gen:
    def __init__(self, seed: int, today: dt.date):
        self.r = random.Random(seed)
        self.now = dt.datetime.combine(today, dt.time(12, 0), tzinfo=dt.UTC)
        self.today = today
        self.sqlite = connection.vendor == "sqlite"
        cultures = list(vocab.NAMES.items())
        self.cultures = [(c, v[1], v[2], v[3]) for c, v in cultures]
        self.culture_weights = [v[0] for _, v in cultures]
        self._fold: dict[str, str] = {}

    def fold(self, s: str) -> str:
        v = self._fold.get(s)
        if v is None:
            v = self._fold[s] = fold(s)
        return v

    def ts(self, value: dt.datetime) -> Any:
        # Django stores naive UTC text on SQLite; PostgreSQL takes the aware value.
        return str(value.replace(tzinfo=None)) if self.sqlite else value

    def day(self, value: dt.date) -> Any:
        return value.isoformat() if self.sqlite else value

    def past(self, days: int = 365) -> dt.datetime:
        return self.now - dt.timedelta(seconds=self.r.randrange(days * 86400))

    def phone(self, region: str) -> str:
        prefix, digits = self.r.choice(_PHONE_PATTERNS[region])
        return f"{prefix}{self.r.randrange(10**digits):0{digits}d}"

    def owner(self, owners: list[tuple[int, int | None, float]]) -> tuple[int, int | None, str]:
        x = self.r.random()
        user_id, team_id = next((u, t) for u, t, cum in owners if x < cum)
        v = self.r.random()
        if team_id is None or v < 0.88:
            visibility = "everyone"
        elif v < 0.97:
            visibility = "team"
        else:
            visibility = "private"
        return user_id, team_id, visibility


def _slug(s: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in fold(s).replace("&", "and"))
    out = "-".join(p for p in out.split("-") if p)
    return out.encode("ascii", "ignore").decode() or "org"


def seed(
    *,
    people: int,
    orgs: int | None = None,
    deals: int | None = None,
    activities: int | None = None,
    seed: int = 1,
    users: bool = False,
    today: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Append a generated data set to the database and return what was written."""
    defaults = default_counts(people)
    orgs = defaults["orgs"] if orgs is None else orgs
    deals = defaults["deals"] if deals is None else deals
    activities = defaults["activities"] if activities is None else activities
    if min(people, orgs, deals, activities) < 0:
        raise SeedError("Counts cannot be negative.")
    if deals and not orgs:
        raise SeedError("Deals need organisations: pass --orgs 1 or more.")
    if activities and not people:
        raise SeedError("Activities need people: pass --people 1 or more.")
    say = progress or (lambda msg: None)
    started = time.monotonic()
    result = SeedResult()

    if users:
        demo = ensure_demo_users()
        owner_users = [demo[u] for u in ("maria", "sam", "mona", "sven", "admin")]
        shares = [0.3, 0.3, 0.15, 0.15, 0.1]
    else:
        owner_users = list(
            User.objects.filter(is_active=True).exclude(role=Role.READ_ONLY).order_by("id")[:50]
        )
        if not owner_users:
            raise SeedError("There is no user to own the records: pass --users to create the demo users.")
        shares = [1 / len(owner_users)] * len(owner_users)
    owners, cum = [], 0.0
    for user, share in zip(owner_users, shares, strict=True):
        cum += share
        team_ids = sorted(user.team_ids())
        owners.append((user.pk, team_ids[0] if team_ids else None, cum))
    owners[-1] = (owners[-1][0], owners[-1][1], 2.0)  # float rounding must never fall off the end
    user_ids = [u.pk for u in owner_users]

    g = _Gen(seed, today or timezone.localdate())
    with _Sqlite():
        with transaction.atomic():
            tag_ids = _tags()
            pipeline = pipeline_ensure_default()
            stages = list(pipeline.stages.order_by("position"))
            products = _products()
            org_rows = _organisations(g, orgs, owners, tag_ids, result)
            deal_rows = _deals(g, deals, org_rows, pipeline.pk, stages, owners, result)
        say(f"organisations {orgs:,}, deals {deals:,} ({time.monotonic() - started:.1f}s)")

        org_members: dict[int, list[int]] = {}
        deals_by_org: dict[int, list[int]] = {}
        for deal_id, org_id, *_ in deal_rows:
            deals_by_org.setdefault(org_id, []).append(deal_id)
        _people(
            g,
            people,
            activities,
            org_rows,
            owners,
            user_ids,
            tag_ids,
            org_members,
            deals_by_org,
            result,
            say,
            started,
        )
        with transaction.atomic():
            _participants_and_orders(g, deal_rows, org_rows, org_members, products, user_ids, result)
    _reset_sequences()
    result.seconds = time.monotonic() - started
    return result


def _tags() -> dict[str, int]:
    ids = {}
    for name, color, _share in vocab.TAGS:
        ids[name] = Tag.objects.get_or_create(name=name, defaults={"color": color})[0].pk
    return ids


def _products() -> list[Product]:
    out = []
    for name, sku, price, sub in vocab.PRODUCTS:
        product, _ = Product.objects.get_or_create(
            sku=sku, defaults={"name": name, "price": price, "currency": "EUR", "is_subscription": sub}
        )
        out.append(product)
    return out


def _organisations(g: _Gen, n: int, owners, tag_ids, result: SeedResult) -> list[tuple]:
    """Returns (id, name, domain, country, owner_id, team_id, visibility, tag) per organisation."""
    r = g.r
    table = _Table(
        Organisation,
        [
            "id",
            "owner_id",
            "team_id",
            "visibility",
            "created_at",
            "updated_at",
            "name",
            "name_key",
            "industry",
            "employees",
            "website",
            "phone",
            "description",
            "source",
        ],
    )
    domains = _Table(OrganisationDomain, ["organisation_id", "domain"])
    addresses = _Table(
        Address, ["organisation_id", "label", "street", "city", "region", "postcode", "country"]
    )
    tags = _M2M(Organisation.tags.through, "organisation", "tag")
    next_id = _next_id(Organisation)
    used_domains: set[str] = set()
    out, rows, dom_rows, addr_rows, tag_rows = [], [], [], [], []
    for i in range(n):
        oid = next_id + i
        if i < len(vocab.ORG_SPECIAL) and n >= 20:
            name, slug, industry, country = vocab.ORG_SPECIAL[i]
        else:
            country = r.choices(["GB", "US", "DE", "FR"], [30, 30, 22, 18])[0]
            noun = r.choice(vocab.ORG_NOUNS)
            legal = r.choice(vocab.LEGAL[country])
            name = f"{r.choice(vocab.ORG_ROOTS)} {noun}" + (f" {legal}" if legal else "")
            slug = _slug(name.removesuffix(f" {legal}") if legal else name)
            industry = vocab.NOUN_INDUSTRY.get(noun) or r.choice(vocab.INDUSTRIES)
        tld = {"GB": "co.example", "US": "example", "DE": "de.example", "FR": "fr.example"}[country]
        domain = f"{slug}.{tld}"
        k = 2
        while domain in used_domains:
            domain = f"{slug}-{k}.{tld}"
            k += 1
        used_domains.add(domain)
        owner_id, team_id, visibility = g.owner(owners)
        created = g.past(730)
        lo, hi = r.choices(vocab.SIZES, [30, 30, 20, 12, 6, 2])[0]
        city, postcode, region = r.choice(vocab.CITIES[country])
        rows.append(
            (
                oid,
                owner_id,
                team_id,
                visibility,
                g.ts(created),
                g.ts(created),
                name,
                fold(name)[:200],
                industry,
                r.randint(lo, hi),
                f"https://www.{domain}",
                g.phone(country),
                f"{industry} company based in {city}.",
                Source.SEED,
            )
        )
        dom_rows.append((oid, domain))
        addr_rows.append(
            (
                oid,
                "head office",
                f"{r.randint(1, 250)} {r.choice(vocab.STREETS[country])}",
                city,
                region,
                postcode,
                vocab.COUNTRY_NAME[country],
            )
        )
        x = r.random()
        tag = "customer" if x < 0.35 else "prospect" if x < 0.7 else "partner" if x < 0.78 else ""
        if tag:
            tag_rows.append((oid, tag_ids[tag]))
        out.append((oid, name, domain, country, owner_id, team_id, visibility, tag))
    table.insert(rows)
    domains.insert(dom_rows)
    addresses.insert(addr_rows)
    tags.insert(tag_rows)
    result.counts.update(organisations=table.count, domains=domains.count, addresses=addresses.count)
    return out


def _deals(g: _Gen, n: int, org_rows, pipeline_id: int, stages, owners, result: SeedResult) -> list[tuple]:
    """Returns (id, org_id, stage, amount, currency, closed_on, owner_id) per deal."""
    r = g.r
    table = _Table(
        Deal,
        [
            "id",
            "owner_id",
            "team_id",
            "visibility",
            "created_at",
            "updated_at",
            "name",
            "name_key",
            "pipeline_id",
            "stage_id",
            "status",
            "amount",
            "currency",
            "expected_close",
            "closed_at",
            "organisation_id",
            "description",
            "lost_reason",
            "stage_changed_at",
        ],
    )
    weights = [25, 20, 18, 12, 15, 10][: len(stages)] + [5] * max(0, len(stages) - 6)
    next_id = _next_id(Deal)
    # Deals go mostly to customers and prospects, as they do in life.
    hot = [o for o in org_rows if o[7] in ("customer", "prospect")] or org_rows
    rows, out = [], []
    for i in range(n):
        did = next_id + i
        org = r.choice(hot) if r.random() < 0.8 else r.choice(org_rows)
        oid, org_name, _domain, country, owner_id, team_id, visibility, _tag = org
        if r.random() < 0.3:  # someone else in the company works this deal
            owner_id, team_id, visibility = g.owner(owners)
        stage = r.choices(stages, weights)[0]
        status = "won" if stage.is_won else "lost" if stage.is_lost else "open"
        amount = round(min(2_000_000, r.lognormvariate(9.6, 1.0)), -2) or 500
        created = g.past(365)
        closed_at = None
        if status == "open":
            expected = g.today + dt.timedelta(days=r.randrange(0, 183))
            changed = created + (g.now - created) * r.random()
        else:
            closed_at = created + (g.now - created) * r.random()
            expected = closed_at.date()
            changed = closed_at
        name = f"{org_name} — {r.choice(vocab.DEAL_KINDS)}"
        rows.append(
            (
                did,
                owner_id,
                team_id,
                visibility,
                g.ts(created),
                g.ts(changed),
                name,
                fold(name)[:200],
                pipeline_id,
                stage.pk,
                status,
                f"{amount:.2f}",
                CURRENCY[country],
                g.day(expected),
                g.ts(closed_at) if closed_at else None,
                oid,
                "",
                r.choice(vocab.LOST_REASONS) if status == "lost" else "",
                g.ts(changed),
            )
        )
        out.append((did, oid, stage, amount, CURRENCY[country], closed_at, owner_id))
    table.insert(rows)
    result.counts["deals"] = table.count
    return out


def _people(
    g: _Gen,
    n: int,
    n_activities: int,
    org_rows,
    owners,
    user_ids,
    tag_ids,
    org_members,
    deals_by_org,
    result: SeedResult,
    say,
    started: float,
) -> None:
    r = g.r
    person_t = _Table(
        Person,
        [
            "id",
            "owner_id",
            "team_id",
            "visibility",
            "created_at",
            "updated_at",
            "first_name",
            "last_name",
            "sort_key",
            "name_key",
            "title",
            "organisation_id",
            "bio",
            "language",
            "is_vip",
            "source",
            "last_activity_at",
        ],
    )
    ident_t = _Table(
        Identity, ["person_id", "kind", "value", "label", "is_primary", "verified", "created_at"]
    )
    emp_t = _Table(
        Employment, ["person_id", "organisation_id", "title", "started_on", "ended_on", "is_current"]
    )
    rel_t = _Table(
        Relationship, ["from_person_id", "to_person_id", "kind", "strength", "source", "created_at"]
    )
    tag_t = _M2M(Person.tags.through, "person", "tag")
    act_t = _Table(
        Activity,
        [
            "owner_id",
            "team_id",
            "visibility",
            "created_at",
            "updated_at",
            "kind",
            "subject",
            "body",
            "occurred_at",
            "person_id",
            "organisation_id",
            "deal_id",
            "call_direction",
            "call_duration_s",
            "call_outcome",
            "phone_number",
            "ends_at",
            "location",
            "due_at",
            "assignee_id",
            "done_at",
            "email_from",
            "email_to",
        ],
    )
    first_id = _next_id(Person)
    used_emails: set[str] = set()
    tag_list = [(tag_ids[name], share, name) for name, _c, share in vocab.TAGS]
    relationships: set[tuple[int, int, str]] = set()
    last_report = 0
    done = 0
    acts_done = 0
    while done < n:
        size = min(PEOPLE_CHUNK, n - done)
        # Activities are spread so that the total matches the request exactly.
        acts_target = (n_activities * (done + size)) // n - acts_done if n else 0
        per_person = [0] * size
        for _ in range(acts_target):
            per_person[r.randrange(size)] += 1
        people_rows, idents, emps, rels, tags, acts = [], [], [], [], [], []
        for j in range(size):
            pid = first_id + done + j
            culture, region, firsts, lasts = r.choices(g.cultures, g.culture_weights)[0]
            first, first_ascii = r.choice(firsts) if r.random() > 0.001 else r.choice(vocab.EMOJI_FIRST_NAMES)
            last, last_ascii = r.choice(lasts)
            org = r.choice(org_rows) if org_rows and r.random() < 0.85 else None
            if org:
                owner_id, team_id, visibility = org[4], org[5], org[6]
                if r.random() < 0.1:
                    owner_id, team_id, visibility = g.owner(owners)
            else:
                owner_id, team_id, visibility = g.owner(owners)
            created = g.past(730)
            title = r.choice(vocab.TITLES) if org else ""
            # email: at the employer's domain, or a personal address
            domain = org[2] if org else r.choice(vocab.FREEMAIL)
            local = f"{first_ascii}.{last_ascii}"
            email = f"{local}@{domain}"
            k = 2
            while email in used_emails:
                email = f"{local}{k}@{domain}"
                k += 1
            used_emails.add(email)
            cts = g.ts(created)
            idents.append((pid, "email", email, "work" if org else "home", True, False, cts))
            phone_region = org[3] if org and r.random() < 0.8 else region
            if r.random() < 0.6:
                idents.append((pid, "phone", g.phone(phone_region), "mobile", True, False, cts))
            handle = f"{first_ascii[:7]}{last_ascii[:6]}"
            if r.random() < 0.12:
                idents.append((pid, "x", f"{handle}{r.randrange(100)}"[:15], "", False, False, cts))
            if r.random() < 0.04:
                idents.append(
                    (
                        pid,
                        "mastodon",
                        f"@{handle}@{r.choice(['mastodon.social', 'fosstodon.org', 'hachyderm.io'])}",
                        "",
                        False,
                        False,
                        cts,
                    )
                )
            if r.random() < 0.06:
                idents.append((pid, "bluesky", f"{handle}.bsky.social", "", False, False, cts))
            if r.random() < 0.25:
                idents.append(
                    (
                        pid,
                        "linkedin",
                        f"{first_ascii}-{last_ascii}-{r.randrange(10**6):06d}",
                        "",
                        False,
                        False,
                        cts,
                    )
                )
            if org:
                started_on = (created - dt.timedelta(days=r.randrange(30, 3000))).date()
                emps.append((pid, org[0], title, g.day(started_on), None, True))
                if r.random() < 0.08 and len(org_rows) > 1:
                    prev = r.choice(org_rows)
                    if prev[0] != org[0]:
                        emps.append(
                            (
                                pid,
                                prev[0],
                                r.choice(vocab.TITLES),
                                g.day(started_on - dt.timedelta(days=r.randrange(400, 2000))),
                                g.day(started_on - dt.timedelta(days=r.randrange(1, 60))),
                                False,
                            )
                        )
                members = org_members.setdefault(org[0], [])
                if members and r.random() < 0.3:
                    other = r.choice(members)
                    kind = "reports_to" if r.random() < 0.4 else "colleague"
                    if (pid, other, kind) not in relationships:
                        relationships.add((pid, other, kind))
                        rels.append((pid, other, kind, r.randint(30, 95), "seed", cts))
                members.append(pid)
            if pid > first_id and r.random() < 0.05:
                other = r.randrange(first_id, pid)
                kind = "knows" if r.random() < 0.7 else "introduced_by"
                if (pid, other, kind) not in relationships:
                    relationships.add((pid, other, kind))
                    rels.append((pid, other, kind, r.randint(10, 80), "seed", cts))
            is_vip = False
            org_tag = org[7] if org else ""
            for tid, share, name in tag_list:
                if r.random() < share or (name == org_tag and r.random() < 0.5):
                    tags.append((pid, tid))
                    is_vip = is_vip or name == "vip"
            last_activity = None
            for _ in range(per_person[j]):
                occurred = g.past(365)
                last_activity = (
                    occurred if last_activity is None or occurred > last_activity else last_activity
                )
                acts.append(
                    _activity(
                        g, occurred, owner_id, team_id, visibility, pid, org, email, deals_by_org, user_ids
                    )
                )
            people_rows.append(
                (
                    pid,
                    owner_id,
                    team_id,
                    visibility,
                    cts,
                    cts,
                    first,
                    last,
                    f"{g.fold(last)} {g.fold(first)}".strip()[:201],
                    f"{g.fold(first)} {g.fold(last)}".strip()[:201],
                    title,
                    org[0] if org else None,
                    "",
                    LANGUAGE[culture],
                    is_vip,
                    Source.SEED,
                    g.ts(last_activity) if last_activity else None,
                )
            )
        with transaction.atomic():
            person_t.insert(people_rows)
            ident_t.insert(idents)
            emp_t.insert(emps)
            rel_t.insert(rels)
            tag_t.insert(tags)
            act_t.insert(acts)
        done += size
        acts_done += acts_target
        if n >= 100_000 and (done - last_report >= 100_000 or done == n):
            last_report = done
            elapsed = time.monotonic() - started
            rows = person_t.count + ident_t.count + emp_t.count + rel_t.count + tag_t.count + act_t.count
            say(
                f"people {done:,}/{n:,}  activities {act_t.count:,}  {rows:,} rows  "
                f"{rows / elapsed:,.0f} rows/s  ({elapsed:.0f}s)"
            )
    result.counts.update(
        people=person_t.count,
        identities=ident_t.count,
        employments=emp_t.count,
        relationships=rel_t.count,
        person_tags=tag_t.count,
        activities=act_t.count,
    )


def _activity(
    g: _Gen, occurred: dt.datetime, owner_id, team_id, visibility, pid, org, email, deals_by_org, user_ids
) -> tuple:
    r = g.r
    kind = r.choices(["note", "call", "meeting", "task", "email"], [30, 30, 15, 15, 10])[0]
    org_id = org[0] if org else None
    deal_id = None
    if org_id and r.random() < 0.3:
        org_deals = deals_by_org.get(org_id)
        if org_deals:
            deal_id = r.choice(org_deals)
    direction = outcome = phone = location = email_from = email_to = body = ""
    duration = ends_at = due_at = assignee = done_at = None
    if kind == "note":
        subject = r.choice(vocab.NOTE_SUBJECTS)
        body = "Notes: " + subject.lower() + "."
    elif kind == "call":
        subject = r.choice(vocab.CALL_SUBJECTS)
        direction = r.choice(["inbound", "outbound", "outbound"])
        outcome = r.choices(
            ["connected", "voicemail", "no_answer", "busy", "wrong_number"], [55, 20, 18, 5, 2]
        )[0]
        duration = r.randint(60, 2400) if outcome == "connected" else r.randint(0, 40)
        phone = g.phone(org[3] if org else "GB")
    elif kind == "meeting":
        subject = r.choice(vocab.MEETING_SUBJECTS)
        ends_at = g.ts(occurred + dt.timedelta(minutes=r.choice([30, 45, 60, 90])))
        location = r.choice(vocab.LOCATIONS)
    elif kind == "task":
        subject = r.choice(vocab.TASK_SUBJECTS)
        assignee = owner_id if owner_id in user_ids else r.choice(user_ids)
        if r.random() < 0.3:  # still open: due soon
            due_at = g.ts(g.now + dt.timedelta(hours=r.randrange(-48, 24 * 21)))
        else:
            due_at = g.ts(occurred + dt.timedelta(days=r.randrange(1, 10)))
            done_at = g.ts(occurred + dt.timedelta(days=r.randrange(0, 10)))
    else:
        subject = r.choice(vocab.EMAIL_SUBJECTS)
        email_from, email_to = (
            (email, "sales@rapport.example") if r.random() < 0.5 else ("sales@rapport.example", email)
        )
        body = "Hello,\n\nthanks for your time today.\n\nBest regards"
    ots = g.ts(occurred)
    return (
        owner_id,
        team_id,
        visibility,
        ots,
        ots,
        kind,
        subject,
        body,
        ots,
        pid,
        org_id,
        deal_id,
        direction,
        duration,
        outcome,
        phone,
        ends_at,
        location,
        due_at,
        assignee,
        done_at,
        email_from,
        email_to,
    )


def _participants_and_orders(g: _Gen, deal_rows, org_rows, org_members, products, user_ids, result) -> None:
    r = g.r
    part_t = _Table(DealParticipant, ["deal_id", "person_id", "role"])
    order_t = _Table(
        Order,
        [
            "organisation_id",
            "product_id",
            "deal_id",
            "quantity",
            "amount",
            "currency",
            "started_on",
            "ends_on",
            "status",
            "created_by_id",
        ],
    )
    parts, orders = [], []
    for deal_id, org_id, stage, amount, currency, closed_at, owner_id in deal_rows:
        members = org_members.get(org_id)
        if members:
            for person_id in r.sample(members, min(len(members), r.randint(1, 3))):
                parts.append((deal_id, person_id, r.choice(vocab.PARTICIPANT_ROLES)))
        if stage.is_won and closed_at:
            product = r.choice(products)
            start = closed_at.date()
            ends = start + dt.timedelta(days=365) if product.is_subscription else None
            status = "active" if ends is None or ends >= g.today else "ended"
            orders.append(
                (
                    org_id,
                    product.pk,
                    deal_id,
                    r.randint(1, 50),
                    f"{amount:.2f}",
                    currency,
                    g.day(start),
                    g.day(ends) if ends else None,
                    status,
                    owner_id,
                )
            )
    # The installed base of customers that predates the pipeline.
    for org in org_rows:
        if org[7] == "customer" and r.random() < 0.6:
            product = r.choice(products)
            start = g.today - dt.timedelta(days=r.randrange(30, 1500))
            qty = r.randint(1, 200)
            orders.append(
                (
                    org[0],
                    product.pk,
                    None,
                    qty,
                    f"{Decimal(str(product.price)) * qty:.2f}",
                    CURRENCY[org[3]],
                    g.day(start),
                    None,
                    "active" if r.random() < 0.85 else "cancelled",
                    r.choice(user_ids),
                )
            )
    part_t.insert(parts)
    order_t.insert(orders)
    result.counts.update(deal_participants=part_t.count, orders=order_t.count)


def _reset_sequences() -> None:
    """Explicit ids leave PostgreSQL sequences behind; SQLite needs nothing."""
    if connection.vendor != "postgresql":
        return
    sql = connection.ops.sequence_reset_sql(
        no_style(),
        [
            Organisation,
            OrganisationDomain,
            Address,
            Deal,
            Person,
            Identity,
            Employment,
            Relationship,
            Activity,
            DealParticipant,
            Order,
        ],
    )
    with connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)


def is_seeded() -> bool:
    return Person.objects.filter(source=Source.SEED).exists()


def describe(result: SeedResult) -> Iterable[str]:
    for name, count in result.counts.items():
        yield f"  {name:<18} {count:>12,}"
