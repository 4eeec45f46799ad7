"""The one ingest pipeline every connector feeds.

    webhook/poller → verify → RawPayload (durable) → task → normalise → store (idempotent)
    → resolve identity → thread → score → route → notify

Exactly once: the RawPayload is committed before the platform is acknowledged, and a
message is unique per (channel, external id), so processing a payload twice (a worker killed
after storing but before marking the payload processed, or an admin replay) finds the
message already there and adds nothing. Everything a message causes (person, conversation,
routing, notices, auto-reply row) is written in the same transaction as the message, so a
crash leaves either all of it or none of it."""

import contextlib
import datetime as dt
import functools
import gc
import logging
import operator
import os
import signal
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, connections, models, transaction
from django.db.models import F
from django.db.models.base import ModelState
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.channels import media, registry
from rapport.channels.base import CanonicalMessage, NormaliseError, content_hash_id
from rapport.channels.models import Channel, PayloadStatus, RawPayload
from rapport.conversations import routing, scoring
from rapport.conversations.models import (
    OPEN_STATUSES,
    Conversation,
    Delivery,
    Direction,
    Message,
    Notification,
    Status,
)
from rapport.conversations.sanitise import clean_html, html_to_text
from rapport.conversations.scoring import NEUTRAL, Score, score
from rapport.core import reads
from rapport.core.errors import ActionError
from rapport.core.models import Visibility
from rapport.core.rows import column, conn_itself, insert_one, insert_rows, insert_sql, row_writer
from rapport.people.identities import IdentityError, normalise
from rapport.people.models import Identity, IdentityKind, Organisation, Person, Source

log = logging.getLogger(__name__)

THREAD_WINDOW = dt.timedelta(days=7)
MAX_ATTEMPTS = 5
MAX_TEXT = 100_000


def system_user() -> User:
    """The actor of everything the pipeline writes. It has no usable password and cannot
    log in; it is an admin so it may file new people under any channel's team."""
    user = User.objects.filter(username=routing.BOT_USERNAME).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = User(username=routing.BOT_USERNAME, first_name="Rapport", last_name="bot", role=Role.ADMIN)
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        return User.objects.get(username=routing.BOT_USERNAME)


# --- per-batch context -------------------------------------------------------------------

_OWNER = Person._meta.get_field("owner")
_ORG_OWNER = Organisation._meta.get_field("owner")
_ASSIGNEE = Conversation._meta.get_field("assignee")
_PERSON = Conversation._meta.get_field("person")
_PERSON_ORG = Person._meta.get_field("organisation")
_NOTIFICATION_NAMES = ("id", "user_id", "conversation_id", "kind", "text", "created_at", "read_at")
assert tuple(f.attname for f in Notification._meta.concrete_fields) == _NOTIFICATION_NAMES, (
    "Batch.notify builds notices positionally"
)
_PERSON_ONLY = ("id", "owner_id", "team_id", "visibility", "organisation_id", "is_vip", "merged_into_id")


def _bare(model: Any, names: tuple[str, ...], values: Sequence[Any], *, stored: bool = True) -> Any:
    """An instance without Model.__init__'s walk over every field (and its init signals, which
    nothing here listens to): a batch builds hundreds per message kind. `stored`: as the
    database holds it, with only `names` loaded (the others load on first access, as deferred
    fields do); otherwise a new, unsaved row with every concrete field given, as
    Model(*values) builds it."""
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, values, strict=True))
    state = ModelState()
    if stored:
        state.adding, state.db = False, connection.alias
    obj._state = state
    return obj


_ORGANISATION = Conversation._meta.get_field("organisation")


class Batch:
    """What storing a batch of messages needs to know, read with one query per kind of
    lookup instead of several per message: senders' people, already-stored external ids,
    the conversations that replies, DM threads and open conversations point to, the routing
    rules and SLA table. Messages stored earlier in the same batch are added as they go, so
    the tenth message of a batch sees the first nine exactly as a later query would.

    A single `ingest()` is a batch of one, so both paths run the same code. Build it inside
    the transaction that stores the batch (the lookups must not go stale under it), or, to
    plan a batch (`planning`), in a read snapshot whose reads are checked again under the
    write lock before its rows are written (see _plan)."""

    def __init__(
        self, items: list[tuple[Channel, CanonicalMessage, str]], now: dt.datetime, *, planning: bool = False
    ):
        self.now = now
        self.bot: User | None = None
        self.rules = routing.active_rules()
        self.sla = routing.sla_table()
        self.notices: list[Notification] = []
        self.conversations: dict[int, Conversation] = {}
        # (channel id, external id) → stored message (None: stored before this batch)
        self.stored: dict[tuple[int, str], Message | None] = {}
        # (channel kind, external id) → (message id, conversation id), newest message wins
        self.replies: dict[tuple[str, str], tuple[int, int]] = {}
        # (channel id, thread id) → (message id, conversation id)
        self.threads: dict[tuple[int, str], tuple[int, int]] = {}
        # (person id, channel id) → conversation ids that may be the person's open one there
        self.candidates: dict[tuple[int, int], set[int]] = {}
        self.linked: set[tuple[int, int]] = set()  # (conversation id, channel id)
        self.people: dict[tuple[str, str], Person | None] = {}
        self.persons: dict[int, Person] = {}
        self.users: dict[int, User] = {}
        # Written once at the end of the batch (or when something must see them sooner).
        self.messages: list[Message] = []
        self.links: list[Any] = []
        self.dirty: dict[int, Conversation] = {}
        self.routing = routing.BatchRouting()
        self.seq = 0
        # Planning (SQLite, see _plan): nothing is written while the batch is worked out; new
        # people and conversations get their ids ahead of the insert (_next_id) and every
        # row waits here for flush(), which runs under the write lock.
        self.planning = planning
        self.new_rows: dict[Any, tuple[bool, list[Any]]] = {}  # model → (with ids, rows)
        self._last_ids: dict[Any, int] = {}
        self.statements: list[tuple[str, list[list[Any]]]] = []  # prepare() → flush()
        self.originals: dict[int, tuple[Any, ...]] = {}  # conversation id → fields as stored
        self.inserted_messages: list[Message] = []
        # ingest() hands its message back, so it needs the id; a batch's messages are read
        # back by external id where needed, so it inserts them without.
        self.need_ids = False
        self._prefetch(items)

    def _prefetch(self, items: list[tuple[Channel, CanonicalMessage, str]]) -> None:
        by_channel: dict[int, set[str]] = {}
        keys: set[str] = set()
        kinds: set[str] = set()
        threads: dict[int, set[str]] = {}
        identities: set[tuple[str, str]] = set()
        for channel, cm, external_id in items:
            by_channel.setdefault(channel.pk, set()).add(external_id)
            reply_keys = cm.reply_keys()
            if reply_keys:
                keys.update(reply_keys)
                kinds.add(channel.kind)
            if cm.thread_id:
                threads.setdefault(channel.pk, set()).add(cm.thread_id)
            ident = _identity(cm)
            if ident is not None:
                identities.add(ident)
        for channel_id, ids in by_channel.items():
            for (ext,) in _stored_external_ids(channel_id, list(ids)):
                self.stored[(channel_id, ext)] = None
        conversation_ids: set[int] = set()
        if keys:
            for mid, ext, kind, cid in Message.objects.filter(
                external_id__in=keys, channel__kind__in=kinds
            ).values_list("id", "external_id", "channel__kind", "conversation_id"):
                if (kind, ext) not in self.replies or self.replies[(kind, ext)][0] < mid:
                    self.replies[(kind, ext)] = (mid, cid)
                conversation_ids.add(cid)
        for channel_id, tids in threads.items():
            for mid, tid, cid in _newest_in_threads(channel_id, sorted(tids)):
                self.threads[(channel_id, tid)] = (mid, cid)
                conversation_ids.add(cid)
        if identities:
            self._load_people(identities)
        person_ids = {p.pk for p in self.people.values() if p is not None}
        if person_ids:
            # Driven by the person index; joining the channel links first would read every
            # conversation the channel ever had.
            pids = list(person_ids)
            recent: dict[int, int] = dict(
                _fetch(  # type: ignore[arg-type]
                    f"SELECT id, person_id FROM {_CONV_TABLE} "  # noqa: S608
                    f"WHERE person_id IN ({reads.marks(pids)}) AND last_message_at >= %s",
                    [*pids, reads.db_datetime(self.now - THREAD_WINDOW)],
                )
            )
            if recent:
                cids, chids = list(recent), list(by_channel)
                for cid, chid in _fetch(
                    f"SELECT conversation_id, channel_id FROM {_LINK_TABLE} "  # noqa: S608
                    f"WHERE conversation_id IN ({reads.marks(cids)}) AND channel_id IN ({reads.marks(chids)})",
                    [*cids, *chids],
                ):
                    self.candidates.setdefault((recent[cid], chid), set()).add(cid)
                    conversation_ids.add(cid)
        if conversation_ids:
            self._load_conversations(conversation_ids)
            cids = list(conversation_ids)
            self.linked.update(
                (cid, chid)
                for cid, chid in _fetch(
                    f"SELECT conversation_id, channel_id FROM {_LINK_TABLE} "  # noqa: S608
                    f"WHERE conversation_id IN ({reads.marks(cids)})",
                    cids,
                )
            )

    def _load_people(self, identities: set[tuple[str, str]]) -> None:
        by_kind: dict[str, set[str]] = {}
        for kind, value in identities:
            by_kind.setdefault(kind, set()).add(value)
            self.people[(kind, value)] = None
        found: dict[tuple[str, str], int] = {}
        for kind, values in by_kind.items():
            for value, person_id in _identity_owners(kind, list(values)):
                found[(kind, value)] = person_id
        persons = self._persons(set(found.values()))
        for ident, person_id in found.items():
            self.people[ident] = persons[person_id]

    # Routing reads a conversation's assignee, person and organisation and their owners.
    # They are loaded once per batch and attached to the objects (the few users once),
    # instead of joined into every row: a batch sees the same people and agents again and
    # again.

    def _user(self, pk: int | None) -> User | None:
        return None if pk is None else self.users[pk]

    def _load_users(self, ids: set[int | None]) -> None:
        todo = {pk for pk in ids if pk is not None and pk not in self.users}
        if todo:
            self.users.update(User.objects.in_bulk(todo))

    def _persons(self, ids: set[int]) -> dict[int, Person]:
        todo = ids - self.persons.keys()
        if todo:
            # Only what the pipeline and routing read (owner, organisation, VIP flag, tags by
            # id), as plain values put on bare instances: a batch loads one person per distinct
            # sender, so under a wide audience (50k messages from 5,000 people) building full
            # Person rows (custom JSON, dates, names) grew to the largest part of a batch's
            # reads — four times what reading the values costs. Any other field loads on
            # access, as a deferred field does.
            pks = list(todo)
            rows = []
            for row in _fetch(f"{_PERSON_SELECT}({reads.marks(pks)})", pks):
                values = list(row)
                values[_IS_VIP] = bool(values[_IS_VIP])  # SQLite gives 0/1
                rows.append(_bare(Person, _PERSON_ONLY, tuple(values)))
            orgs = Organisation.objects.in_bulk({p.organisation_id for p in rows if p.organisation_id})
            for person in rows:
                if person.organisation_id is not None:
                    _PERSON_ORG.set_cached_value(person, orgs[person.organisation_id])
            users: set[int | None] = {p.owner_id for p in rows}
            users.update(p.organisation.owner_id for p in rows if p.organisation)
            self._load_users(users)
            for person in rows:
                _OWNER.set_cached_value(person, self._user(person.owner_id))
                if person.organisation is not None:
                    _ORG_OWNER.set_cached_value(person.organisation, self._user(person.organisation.owner_id))
                self.persons[person.pk] = person
        return self.persons

    def _load_conversations(self, ids: set[int]) -> None:
        rows = _conversations(list(ids))
        self._persons({c.person_id for c in rows if c.person_id is not None})
        orgs = Organisation.objects.in_bulk({c.organisation_id for c in rows if c.organisation_id})
        self._load_users({c.assignee_id for c in rows} | {o.owner_id for o in orgs.values()})
        for org in orgs.values():
            _ORG_OWNER.set_cached_value(org, self._user(org.owner_id))
        for conv in rows:
            _ASSIGNEE.set_cached_value(conv, self._user(conv.assignee_id))
            _PERSON.set_cached_value(conv, self.persons.get(conv.person_id) if conv.person_id else None)
            _ORGANISATION.set_cached_value(
                conv, orgs.get(conv.organisation_id) if conv.organisation_id else None
            )
            self.conversations[conv.pk] = conv
            self.originals[conv.pk] = _conv_snapshot(conv)
        self.routing.loaded.update(ids)

    def system_user(self) -> User:
        if self.bot is None:
            self.bot = system_user()
        return self.bot

    def find_conversation(
        self, channel: Channel, cm: CanonicalMessage, person: Person | None, now: dt.datetime
    ) -> Conversation | None:
        found = [
            self.replies[(channel.kind, k)] for k in cm.reply_keys() if (channel.kind, k) in self.replies
        ]
        if found:
            conv = self.conversations[max(found)[1]]
            if conv.status != Status.CLOSED:
                return conv
        if cm.thread_id and (channel.pk, cm.thread_id) in self.threads:
            conv = self.conversations[self.threads[(channel.pk, cm.thread_id)][1]]
            if conv.status != Status.CLOSED:
                return conv
        if person is not None:
            open_ones = [
                self.conversations[cid]
                for cid in self.candidates.get((person.pk, channel.pk), ())
                if self.conversations[cid].person_id == person.pk
                and self.conversations[cid].status in OPEN_STATUSES
                and self.conversations[cid].last_message_at >= now - THREAD_WINDOW
            ]
            if open_ones:
                return max(open_ones, key=lambda c: (c.last_message_at, c.pk))
        return None

    def remember(self, channel: Channel, message: Message, conversation: Conversation) -> None:
        # Messages are inserted at the end of the batch, so they have no id yet: a sequence
        # above any stored id keeps "newest message wins" true within the batch.
        self.seq += 1
        order = 2**62 + self.seq
        self.conversations[conversation.pk] = conversation
        self.stored[(channel.pk, message.external_id)] = message
        self.replies[(channel.kind, message.external_id)] = (order, conversation.pk)
        if message.thread_id:
            self.threads[(channel.pk, message.thread_id)] = (order, conversation.pk)
        if conversation.person_id is not None:
            self.candidates.setdefault((conversation.person_id, channel.pk), set()).add(conversation.pk)

    def insert(self, model: Any, objs: list[Any], *, with_ids: bool = False) -> None:
        """Insert rows now, or, while planning, give them ids (when others refer to them) and
        keep them for flush()."""
        if not objs:
            return
        if not self.planning:
            if with_ids:
                model.objects.bulk_create(objs)
            else:
                insert_rows(model, objs)
            return
        if with_ids:
            for obj in objs:
                obj.pk = self._next_id(model)
                obj._state.adding, obj._state.db = False, connection.alias
        self.new_rows.setdefault(model, (with_ids, []))[1].extend(objs)

    def insert_conversation(self, conversation: Conversation) -> None:
        if self.planning:
            self.insert(Conversation, [conversation], with_ids=True)
        else:
            insert_one(conversation)
            self.originals[conversation.pk] = _conv_snapshot(conversation)

    def _next_id(self, model: Any) -> int:
        """The id SQLite's AUTOINCREMENT would give the next row of `model`: above both the
        table's sequence (ids of deleted rows are never reused) and its largest id. Both
        reads are in the plan's read log, so a row inserted by anyone between planning and
        storing fails the plan's check and the batch is stored the classic way."""
        if model not in self._last_ids:
            table = model._meta.db_table
            quote = connection.ops.quote_name
            with connection.cursor() as cursor:
                cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                row = cursor.fetchone()
                cursor.execute(f"SELECT max({quote(column(model._meta.pk))}) FROM {quote(table)}")  # noqa: S608
                top = cursor.fetchone()
            self._last_ids[model] = max(int(row[0]) if row else 0, int(top[0] or 0) if top else 0)
        self._last_ids[model] += 1
        return self._last_ids[model]

    def notify(self, *, user: User | None, kind: str, text: str, conversation: Conversation) -> None:
        """Queued and written in one insert at the end of the batch (same transaction)."""
        if user is not None and user.is_active:
            # Positional (id, user, conversation, kind, text, created_at, read_at): the keyword
            # path costs twice as much, and a batch queues a notice for most messages.
            row = (None, user.pk, conversation.pk, kind, text[:300], timezone.now(), None)
            self.notices.append(_bare(Notification, _NOTIFICATION_NAMES, row, stored=False))

    def flush_messages(self) -> None:
        """Insert the messages (and channel links) kept so far: an auto-reply must come after
        the message it answers. In a plan this is a write, so the classic path takes over."""
        if self.messages:
            if self.need_ids:
                Message.objects.bulk_create(self.messages)
            else:
                insert_rows(Message, self.messages)
            # Attachments to fetch: rows written in this transaction, the download task queued
            # when it commits (messages without attachments cost no query).
            media.enqueue_for_message(self.messages)
            self.messages = []
        if self.links:
            insert_rows(Conversation.channels.through, self.links)
            self.links = []

    def prepare(self) -> None:
        """Turn every row the batch writes into statement parameters. A plan does it before
        taking the write lock, which is then held only to run the statements (flush)."""
        conn = conn_itself()
        vendor = connection.vendor
        out = self.statements
        for model, (with_ids, objs) in self.new_rows.items():
            if model is Conversation:
                # New conversations are inserted as the batch leaves them: the classic path's
                # INSERT and its one UPDATE (version + 1) in one statement.
                for conv in objs:
                    if self.dirty.pop(conv.pk, None) is not None:
                        conv.version += 1
            sql, values = insert_sql(model, vendor, with_ids)
            out.append((sql, [values(obj, conn) for obj in objs]))
        self.new_rows = {}
        if self.messages and not self.need_ids:
            sql, values = insert_sql(Message, vendor)
            out.append((sql, [values(m, conn) for m in self.messages]))
            self.inserted_messages += self.messages
            self.messages = []
        if self.links:
            sql, values = insert_sql(Conversation.channels.through, vendor)
            out.append((sql, [values(link, conn) for link in self.links]))
            self.links = []
        if self.dirty:
            # Each changed conversation is saved once per batch, bumping the version once (all
            # optimistic locking needs), with prepared UPDATEs (save() would compile one per
            # row) that set only the columns the batch changed: the table has a dozen indexes
            # for the inbox, and SQLite rewrites the entry of every index on a column set.
            groups: dict[tuple[int, ...], list[list[Any]]] = {}
            for conv in self.dirty.values():
                d = conv.__dict__
                before = self.originals.get(conv.pk)
                changed = (
                    tuple(i for i, name in enumerate(_CONV_FIELDS) if d[name] != before[i])
                    if before is not None
                    else _ALL_CONV_FIELDS
                )
                groups.setdefault(changed, []).append(_conversation_update(changed, vendor)[1](conv, conn))
            for changed, rows in groups.items():
                out.append((_conversation_update(changed, vendor)[0], rows))
            self.dirty = {}
        if self.notices:
            sql, values = insert_sql(Notification, vendor)
            out.append((sql, [values(n, conn) for n in self.notices]))
            self.notices = []

    def flush(self) -> None:
        if self.need_ids:
            self.flush_messages()  # ingest() hands its message back with its id
        self.prepare()
        with conn_itself().cursor() as cursor:
            for sql, rows in self.statements:
                if rows:
                    cursor.executemany(sql, rows)
        self.statements = []
        if self.inserted_messages:
            media.enqueue_for_message(self.inserted_messages)
            self.inserted_messages = []
        self.routing.flush()


_CONV_MODEL_FIELDS = [
    f for f in Conversation._meta.concrete_fields if not f.primary_key and f.attname != "version"
]
_CONV_FIELDS = tuple(f.attname for f in _CONV_MODEL_FIELDS)
_ALL_CONV_FIELDS = tuple(range(len(_CONV_FIELDS)))


_CONV_TABLE = connection.ops.quote_name(Conversation._meta.db_table)
_LINK_TABLE = connection.ops.quote_name(Conversation.channels.through._meta.db_table)
_MESSAGE_TABLE = connection.ops.quote_name(Message._meta.db_table)
_CONV_ATTNAMES = tuple(f.attname for f in Conversation._meta.concrete_fields)


@functools.cache
def _conversation_select(vendor: str) -> tuple[str, list[tuple[int, Any]]]:
    """The SELECT of every conversation column and the conversions that make a row what the
    ORM would give. Plain SQL: compiling the ORM's `pk IN (...)` over the ~600 conversations
    a batch of a wide audience touches, and its per-value converters (parse, then make_aware,
    for each of ten datetime columns), cost more than reading the rows.

    On SQLite a datetime column is read as `+column` (the same text, but an expression, so
    the driver's Python converter for the declared type does not run) and made an aware UTC
    datetime by the C fromisoformat. PostgreSQL's driver gives aware datetimes already."""
    quote = connection.ops.quote_name
    cols: list[str] = []
    convert: list[tuple[int, Any]] = []
    for i, f in enumerate(Conversation._meta.concrete_fields):
        col = quote(column(f))
        if isinstance(f, models.DateTimeField):
            if vendor == "sqlite":
                col = f"+{col}"
                convert.append((i, _utc_text))
        elif isinstance(f, models.BooleanField):
            convert.append((i, bool))
        elif hasattr(f, "from_db_value"):
            convert.append((i, functools.partial(_field_from_db, f)))
        cols.append(col)
    return f"SELECT {', '.join(cols)} FROM {_CONV_TABLE} WHERE id IN ", convert  # noqa: S608


def _utc_text(value: str) -> dt.datetime:
    """A datetime as SQLite stores it (naive UTC text) as the ORM returns it (aware, UTC)."""
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _field_from_db(field: Any, value: Any) -> Any:
    return field.from_db_value(value, None, connection)


def _conversations(ids: list[int]) -> list[Conversation]:
    """Whole conversations (every column loaded, as the ORM's would be), on bare instances."""
    select, convert = _conversation_select(connection.vendor)
    out = []
    for row in _fetch(f"{select}({reads.marks(ids)})", ids):
        values = list(row)
        for i, fn in convert:
            if values[i] is not None:
                values[i] = fn(values[i])
        out.append(_bare(Conversation, _CONV_ATTNAMES, tuple(values)))
    return out


_PERSON_TABLE = connection.ops.quote_name(Person._meta.db_table)
_IDENTITY_TABLE = connection.ops.quote_name(Identity._meta.db_table)
_PERSON_SELECT = f"SELECT {', '.join(_PERSON_ONLY)} FROM {_PERSON_TABLE} WHERE id IN "  # noqa: S608
_IS_VIP = _PERSON_ONLY.index("is_vip")


def _identity_owners(kind: str, values: list[str]) -> list[tuple[Any, ...]]:
    """(value, person id) of the identities of `kind` with these values whose person is not
    merged away, newest first (a caller keeping the last one per value keeps the oldest, as
    person_by_identity does)."""
    return _fetch(
        f"SELECT i.value, i.person_id FROM {_IDENTITY_TABLE} i "  # noqa: S608
        f"INNER JOIN {_PERSON_TABLE} p ON p.id = i.person_id "
        f"WHERE i.kind = %s AND i.value IN ({reads.marks(values)}) AND p.merged_into_id IS NULL "
        "ORDER BY i.id DESC",
        [kind, *values],
    )


def _stored_external_ids(channel_id: int, external_ids: list[str]) -> list[tuple[Any, ...]]:
    """The external ids of a channel's messages already stored. The `external_id <> ''` term
    (the partial unique index's own condition) lets SQLite use that index (channel,
    external_id); without it, it reads every message the channel ever had."""
    return _fetch(
        f"SELECT external_id FROM {_MESSAGE_TABLE} WHERE channel_id = %s "  # noqa: S608
        f"AND external_id IN ({reads.marks(external_ids)}) AND NOT (external_id = %s)",
        [channel_id, *external_ids, ""],
    )


_CONV_VALUES = operator.itemgetter(*_CONV_FIELDS)


def _conv_snapshot(conv: Conversation) -> tuple[Any, ...]:
    """A conversation's field values as read (all immutable: text, numbers, datetimes)."""
    return _CONV_VALUES(conv.__dict__)  # type: ignore[no-any-return]


@functools.cache
def _conversation_update(changed: tuple[int, ...], vendor: str) -> tuple[str, Any]:
    """UPDATE of the `changed` fields (indexes into _CONV_FIELDS) and the version, and a
    function giving a conversation's parameters for it."""
    fields = [_CONV_MODEL_FIELDS[i] for i in changed]
    quote = connection.ops.quote_name
    table = quote(Conversation._meta.db_table)
    version = quote("version")
    columns = "".join(f"{quote(column(f))} = %s, " for f in fields)
    sql = f"UPDATE {table} SET {columns}{version} = {version} + 1 WHERE id = %s"  # noqa: S608
    values = row_writer(fields, add=False)
    return sql, lambda conv, conn: [*values(conv, conn), conv.pk]


@functools.cache
def _newest_in_threads_sql(n: int, vendor: str) -> str:
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    values = ", ".join(["(%s)"] * n)
    # One index seek per thread (channel, thread id, id order): a thread can hold thousands
    # of messages (a platform that puts every DM in one thread), and reading them all to keep
    # the newest made the batch's reads grow with the inbox.
    return (
        f"SELECT m.id, m.thread_id, m.conversation_id FROM {table} m WHERE m.id IN ("  # noqa: S608
        f"SELECT (SELECT x.id FROM {table} x WHERE x.channel_id = %s AND x.thread_id = v.column1 "
        f"ORDER BY x.id DESC LIMIT 1) FROM (VALUES {values}) AS v)"
    )


def _newest_in_threads(channel_id: int, thread_ids: list[str]) -> list[tuple[int, str, int]]:
    """(message id, thread id, conversation id) of the newest message of each thread."""
    rows: list[tuple[int, str, int]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(thread_ids), 200):
            chunk = thread_ids[start : start + 200]
            cursor.execute(_newest_in_threads_sql(len(chunk), connection.vendor), [channel_id, *chunk])
            rows += cursor.fetchall()
    return rows


def _by_external_id(channel: Channel | int, external_ids: set[str] | list[str]) -> Any:
    """Messages of a channel with these external ids. The exclude() term (SQL `NOT
    (external_id = '')`, the partial unique index's own condition) lets SQLite use that
    index (channel, external_id); without it, it reads every message the channel ever had."""
    return Message.objects.filter(channel=channel, external_id__in=external_ids).exclude(external_id="")


_IDENTITY_KINDS = frozenset(IdentityKind.values)


def _identity(cm: CanonicalMessage) -> tuple[str, str] | None:
    # Asked four times per message by a batch: kept on the message it was worked out for.
    known = cm.__dict__.get("_rapport_identity", _UNSET)
    if known is not _UNSET:
        return known  # type: ignore[no-any-return]
    kind = cm.author.kind
    if kind not in _IDENTITY_KINDS or not cm.author.value:
        found = None
    else:
        # Phone numbers depend on the default region: part of the key, so a change is seen.
        found = _normalised(kind, cm.author.value, getattr(settings, "RAPPORT_DEFAULT_REGION", None))
    cm.__dict__["_rapport_identity"] = found
    return found


_UNSET = object()


@functools.lru_cache(maxsize=8192)
def _normalised(kind: str, value: str, region: str | None) -> tuple[str, str] | None:
    """Normalising an author (phonenumbers, IDNA) is pure but not cheap, and a batch needs it
    twice per message (prefetch, then resolve) for senders who write again and again;
    process_batch warms this before taking the write lock."""
    try:
        return kind, normalise(kind, value)
    except IdentityError:
        return None


# --- identity -------------------------------------------------------------------------


def resolve_person(channel: Channel, cm: CanonicalMessage, batch: Batch | None = None) -> Person | None:
    """Known email/handle/phone → that person; otherwise a new person flagged for review
    (the duplicates screen suggests merges). None when the identity is not usable."""
    from rapport.people.actions import person_create
    from rapport.people.selectors import person_by_identity

    ident = _identity(cm)
    if ident is None:
        return None
    kind, value = ident
    if batch is not None and ident in batch.people:
        person = batch.people[ident]
    else:
        person = person_by_identity(kind=kind, value=value)
    if person is not None:
        return person
    first, _, last = (cm.author.display_name or "").strip().partition(" ")
    profile = {k: str(v)[:500] for k, v in list((cm.author.profile or {}).items())[:20]}
    try:
        person = person_create(
            actor=batch.system_user() if batch is not None else system_user(),
            first_name=first[:100],
            last_name=last[:100],
            identities=[(kind, value)],
            team=channel.team,
            visibility=Visibility.TEAM if channel.team_id else Visibility.EVERYONE,
            source=Source.INBOX,
            needs_review=True,
            custom={"inbox_profile": profile} if profile else None,
        )
    except ActionError:
        log.warning("could not create a person for %s identity on channel %s", kind, channel.pk)
        return None
    if batch is not None:
        batch.people[ident] = person
    return person


def create_people(batch: Batch, items: list[tuple[Channel, CanonicalMessage, str]]) -> None:
    """Create, in a few inserts, the people a batch's unknown senders become: what
    resolve_person (through person_create) does one sender at a time, the same rows — the
    person in the channel's team flagged for review, their identity, their employment when
    the email's domain belongs to an organisation, the audit entry. `items` are the
    messages the batch will store, in order: a sender's first message names them."""
    from rapport.audit.models import AuditEntry
    from rapport.core.actions import default_team, resolve_access_fields
    from rapport.people.identities import FREE_MAIL_DOMAINS, email_domain
    from rapport.people.models import Employment, OrganisationDomain

    if not connection.features.can_return_rows_from_bulk_insert:
        return  # no ids back from a bulk insert: resolve_person creates them one by one
    firsts: dict[tuple[str, str], tuple[Channel, CanonicalMessage]] = {}
    for channel, cm, _ in items:
        ident = _identity(cm)
        if ident is not None and batch.people.get(ident, 0) is None and ident not in firsts:
            firsts[ident] = (channel, cm)
    if not firsts:
        return
    bot = batch.system_user()
    domains = {
        d
        for kind, value in firsts
        if kind == IdentityKind.EMAIL and (d := email_domain(value)) and d not in FREE_MAIL_DOMAINS
    }
    orgs: dict[str, Any] = {}
    if domains:
        for row in (
            OrganisationDomain.objects.filter(domain__in=domains)
            .select_related("organisation__owner")
            .order_by("-id")  # the oldest row wins, as organisation_for_email does
        ):
            orgs[row.domain] = row.organisation
    access: dict[int, dict[str, Any]] = {}
    people = []
    for (kind, value), (channel, cm) in firsts.items():
        if channel.pk not in access:
            access[channel.pk] = resolve_access_fields(
                actor=bot,
                owner=bot,
                team=channel.team,
                visibility=Visibility.TEAM if channel.team_id else Visibility.EVERYONE,
            )
            access[channel.pk].setdefault("team", default_team(bot))
        first, _, last = (cm.author.display_name or "").strip().partition(" ")
        profile = {k: str(v)[:500] for k, v in list((cm.author.profile or {}).items())[:20]}
        person = Person(
            first_name=first[:100].strip(),
            last_name=last[:100].strip(),
            organisation=orgs.get(email_domain(value)) if kind == IdentityKind.EMAIL else None,
            custom={"inbox_profile": profile} if profile else {},
            source=Source.INBOX,
            needs_review=True,
            **access[channel.pk],
        )
        person.refresh_keys()
        people.append(person)
    batch.insert(Person, people, with_ids=True)
    batch.insert(
        Identity,
        [
            Identity(person=person, kind=kind, value=value, is_primary=True)
            for person, (kind, value) in zip(people, firsts, strict=True)
        ],
    )
    batch.insert(
        Employment,
        [
            Employment(person=p, organisation=p.organisation, title="", is_current=True)
            for p in people
            if p.organisation is not None
        ],
    )
    batch.insert(
        AuditEntry,
        [
            AuditEntry(
                model=Person._meta.label_lower,
                object_id=p.pk,
                actor=bot,
                action=AuditEntry.Action.CREATE,
                changes={},
                summary=f"Created {p.full_name}"[:300],
            )
            for p in people
        ],
    )
    batch.people.update(zip(firsts, people, strict=True))


# --- threading ------------------------------------------------------------------------


def find_conversation(
    channel: Channel, cm: CanonicalMessage, person: Person | None, now: dt.datetime
) -> Conversation | None:
    return Batch([(channel, cm, _external_id(cm))], now).find_conversation(channel, cm, person, now)


# --- store ----------------------------------------------------------------------------


@dataclass
class Ingested:
    message: Message
    created: bool


def _external_id(cm: CanonicalMessage) -> str:
    ext = (cm.external_id or "").strip()
    if not ext:
        return content_hash_id(
            cm.channel_kind, cm.author.kind, cm.author.value, str(cm.sent_at), cm.text, cm.html
        )
    return ext if len(ext) <= 300 else content_hash_id(ext)


def _prepare(cm: CanonicalMessage) -> tuple[str, str]:
    html = clean_html(cm.html)
    text = (cm.text or "")[:MAX_TEXT].replace("\x00", "") or html_to_text(html)[:MAX_TEXT]
    return text, html


def ingest(
    channel: Channel,
    cm: CanonicalMessage,
    *,
    payload: RawPayload | None = None,
    now: dt.datetime | None = None,
) -> Ingested:
    """Store one canonical message and everything it causes; idempotent per external id."""
    external_id = _external_id(cm)
    existing = _by_external_id(channel, [external_id]).first()
    if existing is not None:
        return Ingested(existing, False)
    now = now or timezone.now()
    text, html = _prepare(cm)
    # Scored outside the transaction: analysis may be slow or touch its own tables.
    sc = score(text)
    try:
        with transaction.atomic():
            batch = Batch([(channel, cm, external_id)], now)
            batch.need_ids = True
            message = _store(channel, cm, external_id, text, html, sc, payload, now, batch=batch)
            batch.flush()
            # One message: give the caller the conversation's real version number back.
            message.conversation.refresh_from_db(fields=["version"])
            return Ingested(message, True)
    except IntegrityError:
        # A concurrent worker stored the same message first: theirs is the one.
        existing = _by_external_id(channel, [external_id]).first()
        if existing is None:
            raise
        return Ingested(existing, False)


def _new_message(
    channel: Channel,
    cm: CanonicalMessage,
    external_id: str,
    text: str,
    html: str,
    sc: Score,
    payload: RawPayload | None,
) -> Message:
    """The inbound Message row, but for its conversation, person and time."""
    sent_at = cm.sent_at if cm.sent_at and timezone.is_aware(cm.sent_at) else None
    values = {
        **_MESSAGE_BLANK,
        "direction": Direction.INBOUND,
        "channel_id": channel.pk,
        "external_id": external_id,
        "thread_id": (cm.thread_id or "")[:300],
        "author_kind": cm.author.kind[:12],
        "author_value": (cm.author.value or "")[:320],
        "author_name": (cm.author.display_name or "")[:200],
        "subject": (cm.subject or "")[:300],
        "text": text,
        "html": html,
        "attachments": [a.as_dict() for a in cm.attachments][:100],
        "is_public": cm.is_public,
        "sent_at": sent_at,
        "received_at": None,  # set when stored
        "delivery_status": Delivery.RECEIVED,
        "sentiment": sc.sentiment,
        "urgency": sc.urgency,
        "raw_payload_id": payload.pk if payload is not None else None,
    }
    return _bare(Message, _MESSAGE_FIELDS, [values[name] for name in _MESSAGE_FIELDS], stored=False)


_MESSAGE_FIELDS = tuple(f.attname for f in Message._meta.concrete_fields)
# Every other column's default; the callable ones (received_at, attachments) are set above.
_MESSAGE_BLANK = {
    f.attname: f.get_default()
    for f in Message._meta.concrete_fields
    if not (f.has_default() and callable(f.default))
}


def _store(
    channel: Channel,
    cm: CanonicalMessage,
    external_id: str,
    text: str,
    html: str,
    sc: Score,
    payload: RawPayload | None,
    now: dt.datetime,
    *,
    batch: Batch,
) -> Message:
    """Store one message into `batch` (written by its flush)."""
    person = resolve_person(channel, cm, batch)
    conversation = batch.find_conversation(channel, cm, person, now)
    is_new = conversation is None
    if conversation is None:
        subject = (
            (cm.subject or text or "").strip().splitlines()[0][:300] if (cm.subject or text).strip() else ""
        )
        conversation = Conversation(
            subject=subject,
            team=channel.team,
            person=person,
            organisation=person.organisation if person else None,
            reply_channel=channel,
            created_at=now,
            last_message_at=now,
        )
        batch.insert_conversation(conversation)
    batch.routing.seen(conversation, new=is_new)
    message = _new_message(channel, cm, external_id, text, html, sc, payload)
    if batch.need_ids:
        # ingest() hands the message back: with its related objects, as the ORM would.
        message.conversation, message.person, message.channel = conversation, person, channel
        message.raw_payload = payload
    else:
        # Ids, not objects: a related-object assignment costs more than the whole row's values.
        message.conversation_id, message.person_id = conversation.pk, person.pk if person else None
    message.received_at = now
    batch.messages.append(message)
    if (conversation.pk, channel.pk) not in batch.linked:
        # The batch knows every link of the conversations it touches, so this is an insert
        # without the read channels.add() would do first.
        batch.links.append(Conversation.channels.through(conversation=conversation, channel=channel))
        batch.linked.add((conversation.pk, channel.pk))
    conversation.reply_channel = channel
    # The customer's latest channel wins over an agent's hop: a private or email hop answered
    # (or ignored) by a new message elsewhere goes back to answering where they wrote.
    conversation.reply_mode = ""
    conversation.reply_to = ""
    conversation.last_message_at = max(conversation.last_message_at, now)
    conversation.last_inbound_at = now
    conversation.sentiment, conversation.sentiment_score, conversation.urgency = (
        sc.sentiment,
        sc.score,
        sc.urgency,
    )
    if person is not None and conversation.person_id is None:
        conversation.person = person
    if conversation.status in (Status.WAITING, Status.RESOLVED):
        conversation.status = Status.OPEN
        conversation.resolved_at = None
    before_assignee = conversation.assignee_id
    result = routing.route(
        conversation=conversation,
        channel_kind=channel.kind,
        text=f"{cm.subject} {text}",
        score=sc,
        is_new=is_new,
        now=now,
        rules=batch.rules,
        context=batch.routing,
    )
    batch.routing.track(conversation)
    if is_new:
        routing.apply_sla(conversation, batch.sla)
    conversation.updated_at = now
    batch.dirty[conversation.pk] = conversation
    batch.remember(channel, message, conversation)
    if conversation.assignee_id and conversation.assignee_id != before_assignee:
        batch.notify(
            user=conversation.assignee,
            kind="assigned",
            text=f"New conversation for you: {conversation.subject or 'no subject'}",
            conversation=conversation,
        )
    elif not is_new and conversation.assignee_id:
        batch.notify(
            user=conversation.assignee,
            kind="message",
            text=f"New message in {conversation.subject or 'a conversation'}",
            conversation=conversation,
        )
    if result.auto_reply and channel.is_active:
        from rapport.conversations.actions import queue_outbound

        # The answer must come after the message it answers in the history (ids order it).
        batch.flush_messages()
        reply = queue_outbound(
            conversation=conversation, channel=channel, author=batch.system_user(), text=result.auto_reply
        )
        conversation.last_message_at = max(conversation.last_message_at, reply.received_at)
    return message


# --- raw payloads ---------------------------------------------------------------------


def mark_dead(payload: RawPayload, reason: str) -> None:
    RawPayload.objects.filter(pk=payload.pk).update(status=PayloadStatus.DEAD, error=reason[:2000])
    payload.status, payload.error = PayloadStatus.DEAD, reason[:2000]


def _mark_processed(payload: RawPayload) -> None:
    RawPayload.objects.filter(pk=payload.pk).update(
        status=PayloadStatus.PROCESSED, processed_at=timezone.now(), error=""
    )
    payload.status = PayloadStatus.PROCESSED


def _normalise(payload: RawPayload) -> tuple[list[CanonicalMessage], str]:
    """The payload's messages, or a dead-letter reason when it cannot be read."""
    try:
        return list(registry.inbound(payload.channel.kind).normalise(payload.channel, payload)), ""
    except NormaliseError as exc:
        return [], f"Cannot read this payload: {exc}"
    except registry.ConnectorMissing as exc:
        return [], str(exc)
    except Exception as exc:
        # A normaliser bug: parsing is pure, so retrying cannot help; keep it for a replay
        # once the connector is fixed.
        log.exception("normaliser crashed on payload %s", payload.pk)
        return [], f"The connector failed on this payload ({type(exc).__name__}: {str(exc)[:300]})."


class _Hooks(NamedTuple):
    """A connector's optional after-ingest hooks (its inbound module's functions)."""

    each: Any  # after_ingest(channel, payload, messages)
    wanted: Any  # after_ingest_wanted(payload) -> bool, or None: every payload
    many: Any  # after_ingest_many(channel, [(payload, messages), …]), or None: `each` per payload


def _connector_hooks(channel: Channel) -> _Hooks | None:
    """The connector's `inbound.after_ingest(channel, payload, messages)`, if it has one: rows
    a connector derives from its stored messages (Twilio's Call), written in the transaction
    that stores them, so the webhook's task, the recovery sweep and a replay all give the same
    result. It gets the payload's messages whether stored now or before, so it must be
    idempotent (reprocessing repairs what is missing and adds nothing). With it, optionally,
    `after_ingest_wanted(payload)` (the pipeline reads messages back only for the payloads it
    accepts) and `after_ingest_many(channel, items)` (a batch's payloads at once)."""
    try:
        inbound = registry.inbound(channel.kind)
    except registry.ConnectorMissing:
        return None
    each = getattr(inbound, "after_ingest", None)
    if each is None:
        return None
    return _Hooks(
        each, getattr(inbound, "after_ingest_wanted", None), getattr(inbound, "after_ingest_many", None)
    )


def process_payload(payload_id: int) -> list[Ingested]:
    """Normalise and store one raw payload. Safe to call any number of times."""
    payload = RawPayload.objects.select_related("channel", "channel__team").filter(pk=payload_id).first()
    if payload is None or payload.status == PayloadStatus.PROCESSED:
        return []
    RawPayload.objects.filter(pk=payload.pk).update(attempts=F("attempts") + 1)
    messages, reason = _normalise(payload)
    if reason:
        mark_dead(payload, reason)
        return []
    results = []
    try:
        with transaction.atomic():
            for cm in messages:
                results.append(ingest(payload.channel, cm, payload=payload))
            hooks = _connector_hooks(payload.channel)
            if hooks is not None:
                hooks.each(payload.channel, payload, [r.message for r in results])
    except Exception as exc:
        # The database or a bug: leave the payload "received" for the next attempt, and give
        # up into the dead-letter list after MAX_ATTEMPTS so it is looked at.
        attempts = RawPayload.objects.filter(pk=payload.pk).values_list("attempts", flat=True).first() or 0
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        if attempts >= MAX_ATTEMPTS:
            mark_dead(payload, f"Failed {attempts} times; last error: {reason}")
            return results
        RawPayload.objects.filter(pk=payload.pk).update(error=reason)
        raise
    # Marked after the commit: a worker killed in between leaves the payload pending, and
    # processing it again finds its messages (and the hook's rows) already there.
    _mark_processed(payload)
    return results


# --- batches --------------------------------------------------------------------------

# A batch amortises its reads (rules, people, conversations, counts) over its messages; the
# worker takes what is pending up to this, so batches are only this large under a backlog.
BATCH_SIZE = 1000


def _as_score(result: object) -> Score:
    return Score(
        sentiment=str(getattr(result, "sentiment", "neutral"))[:10],
        score=float(getattr(result, "score", 0.0) or 0.0),
        urgency=str(getattr(result, "urgency", "normal"))[:10],
        intent=str(getattr(result, "intent", "other"))[:20],
    )


def score_many(texts: list[str]) -> list[Score]:
    """score() for many texts, through the intelligence module's analyse_many when that is the
    analyser in use (one backend call for the whole batch). Any failure falls back to scoring
    text by text, and score() itself never raises."""
    analyser = scoring._analyser()
    if analyser is None:
        return [NEUTRAL] * len(texts)
    try:
        from rapport.intelligence.analysis import analyse, analyse_many
    except Exception:  # noqa: BLE001 - a missing module means text-by-text scoring
        return [score(t) for t in texts]
    if analyser is analyse:
        # The same text (a message delivered again in another event) is analysed once.
        unique = list(dict.fromkeys(t[:20000] for t in texts if t and t.strip()))
        try:
            scores = {t: _as_score(result) for t, result in zip(unique, analyse_many(unique), strict=True)}
            return [scores[t[:20000]] if t and t.strip() else NEUTRAL for t in texts]
        except Exception:
            log.exception("batch text analysis failed; scoring text by text")
    return [score(t) for t in texts]


# Per payload: the payload, its messages as (canonical message, external id, text, sanitised
# HTML, score), and the dead-letter reason when it cannot be read.
Scored = list[tuple[RawPayload, list[tuple[Any, ...]], str]]


@dataclass
class BatchResult:
    fetched: int = 0  # pending payloads read
    finished: int = 0  # of those, now processed or dead (by this call or a concurrent one)
    created: int = 0  # messages stored
    duplicates: int = 0  # messages found already stored
    dead: int = 0  # payloads sent to the dead-letter list
    write_s: float = 0.0  # seconds in the storing transaction (SQLite: holding the write lock)
    planned: bool = False  # stored from a plan made outside the write lock (see _plan)


def process_batch(
    *, limit: int = BATCH_SIZE, ids: list[int] | None = None, received_before: dt.datetime | None = None
) -> BatchResult:
    """Process up to `limit` pending payloads (oldest first) in one transaction.

    Parsing, sanitising and scoring happen before the transaction, so the write lock is held
    only for the stores. Inside it the payloads are claimed with a conditional update (status
    still "received"; FOR UPDATE SKIP LOCKED where the database has it), so two workers never
    store the same payload, and everything the batch causes commits together with the
    payloads' "processed" mark: a worker killed mid-batch leaves every payload pending and
    nothing else. If the batch fails, each payload is retried alone, which counts attempts
    and sends a payload that keeps failing to the dead letters without holding up the others."""
    payloads = _pending_payloads(limit, ids, received_before)
    if not payloads:
        return BatchResult()
    return store_batch(parse_batch(payloads))


def parse_batch(payloads: list[RawPayload]) -> Scored:
    """Normalise, sanitise and score a batch of payloads: the pure half of the work (no
    write but a BCC-log channel's own log), done before any lock, and by ParseAhead in a
    second process while the previous batch is stored."""
    # A batch has a handful of channels: one object each instead of one per payload.
    channels = Channel.objects.select_related("team").in_bulk({p.channel_id for p in payloads})
    work: list[tuple[RawPayload, list[tuple[CanonicalMessage, str, str, str]], str]] = []
    texts: list[str] = []
    for payload in payloads:
        payload.channel = channels[payload.channel_id]
        messages, reason = _normalise(payload)
        prepared = []
        for cm in messages:
            _identity(cm)  # outside the write transaction: see _normalised
            text, html = _prepare(cm)
            prepared.append((cm, _external_id(cm), text, html))
            texts.append(text)
        work.append((payload, prepared, reason))
    scores = iter(score_many(texts))
    return [
        (p, [(cm, ext, text, html, next(scores)) for cm, ext, text, html in prepared], reason)
        for p, prepared, reason in work
    ]


def store_batch(scored: Scored) -> BatchResult:
    """Store a parsed batch (see process_batch) in one transaction."""
    payloads = [p for p, _, _ in scored]
    result = BatchResult(fetched=len(payloads))
    if not payloads:
        return result
    # SQLite has one write lock, which the webhooks' RawPayload inserts need too: the batch is
    # worked out before taking it, and only checked and written under it (see _plan).
    plan = _plan(scored) if PLAN_OUTSIDE_LOCK and connection.vendor == "sqlite" else None
    started = time.perf_counter()
    try:
        with transaction.atomic():
            claimed = _claim([p.pk for p in payloads])
            if plan is not None and claimed == plan.claimed and plan.reads.unchanged():
                outcome = plan.outcome
                result.planned = True
            else:
                outcome = _store_all(scored, claimed)
            outcome.batch.flush()
            done, dead = outcome.done, outcome.dead
            finished = set(done)
            _run_hooks([(p, [m[1] for m in msgs]) for p, msgs, _ in scored if p.pk in finished])
            _finish(done, PayloadStatus.PROCESSED, "", timezone.now())
            for reason, pks in dead.items():
                _finish(pks, PayloadStatus.DEAD, reason, None)
    except Exception:
        log.exception("a batch of %s payloads failed; retrying them one by one", len(payloads))
        return _one_by_one(payloads, result)
    result.write_s = time.perf_counter() - started
    result.created, result.duplicates = outcome.created, outcome.duplicates
    result.dead = sum(len(pks) for pks in dead.values())
    # Payloads another worker claimed first are finished too (by that worker).
    result.finished = len(payloads)
    return result


# The payload columns the pipeline and the connectors read (the others load if ever touched):
# building 1,000 full rows (error text, two more dates) was a tenth of the worker. Plain SQL
# for the reads and writes a batch makes of its payloads: the ORM compiled their 1,000-id IN
# lists one parameter at a time, which cost more than running them.
_PAYLOAD_TABLE = connection.ops.quote_name(RawPayload._meta.db_table)
_PAYLOAD_NAMES = ("id", "channel_id", "received_at", "headers", "body", "delivery_id", "status", "attempts")
_PAYLOAD_HEADERS = RawPayload._meta.get_field("headers")


def _pending_payloads(
    limit: int,
    ids: list[int] | None = None,
    received_before: dt.datetime | None = None,
    skip: Collection[int] = (),
) -> list[RawPayload]:
    """Up to `limit` payloads still to process, oldest first, but those in `skip` (payloads
    a parse-ahead process has handed over and that are not stored yet)."""
    if ids is not None and not ids:
        return []
    if skip:
        # Ids first, through the (status, received_at) index alone, then the rows wanted.
        rows = reads.fetch(
            f"SELECT id FROM {_PAYLOAD_TABLE} WHERE status = %s ORDER BY received_at, id LIMIT %s",  # noqa: S608
            [PayloadStatus.RECEIVED.value, limit + len(skip)],
        )
        ids = [pk for (pk,) in rows if pk not in skip][:limit]
        if not ids:
            return []
    sqlite = connection.vendor == "sqlite"
    # On SQLite the date is read as an expression (`+received_at`): the same text without the
    # driver's converter, made an aware datetime by the C fromisoformat below.
    cols = ", ".join("+received_at" if sqlite and n == "received_at" else n for n in _PAYLOAD_NAMES)
    sql = f"SELECT {cols} FROM {_PAYLOAD_TABLE} WHERE status = %s"  # noqa: S608
    params: list[Any] = [PayloadStatus.RECEIVED.value]
    if ids is not None:
        sql += f" AND id IN ({reads.marks(ids)})"
        params += ids
    if received_before is not None:
        sql += " AND received_at <= %s"
        params.append(reads.db_datetime(received_before))
    # The (status, received_at) index's own order (its rows end with the id): no sort.
    sql += " ORDER BY received_at, id LIMIT %s"
    params.append(limit)
    out = []
    for row in reads.fetch(sql, params):
        values = list(row)
        values[2] = _utc_text(values[2]) if sqlite else values[2]
        values[3] = _field_from_db(_PAYLOAD_HEADERS, values[3])
        out.append(_bare(RawPayload, _PAYLOAD_NAMES, tuple(values)))
    return out


def _claim(ids: list[int]) -> set[int]:
    """Of these payloads, those still waiting, locked for this transaction: FOR UPDATE SKIP
    LOCKED where the database has it (a concurrent worker's are skipped, not waited for);
    SQLite's one write lock, held since BEGIN IMMEDIATE, does the same there."""
    sql = f"SELECT id FROM {_PAYLOAD_TABLE} WHERE id IN ({reads.marks(ids)}) AND status = %s"  # noqa: S608
    if connection.features.has_select_for_update_skip_locked:
        sql += " FOR UPDATE SKIP LOCKED"
    return {pk for (pk,) in reads.fetch(sql, [*ids, PayloadStatus.RECEIVED.value])}


def _finish(ids: list[int], status: str, error: str, processed_at: dt.datetime | None) -> None:
    """Mark claimed payloads processed (or dead, with the reason), counting the attempt."""
    if not ids:
        return
    sql = (
        f"UPDATE {_PAYLOAD_TABLE} SET status = %s, error = %s, attempts = attempts + 1"  # noqa: S608
        + (", processed_at = %s" if processed_at is not None else "")
        + f" WHERE id IN ({reads.marks(ids)})"
    )
    params: list[Any] = [str(status), error]
    if processed_at is not None:
        params.append(reads.db_datetime(processed_at))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *ids])


@dataclass
class _Outcome:
    batch: Batch  # holding the rows to write (flush)
    done: list[int]  # payloads processed
    dead: dict[str, list[int]]  # dead-letter reason → payloads
    created: int
    duplicates: int


def _store_all(scored: Scored, claimed: set[int], *, planning: bool = False) -> _Outcome:
    """Store the claimed payloads' messages into one Batch (written by its flush())."""
    items = [(p.channel, cm, ext) for p, prepared, _ in scored if p.pk in claimed for cm, ext, *_ in prepared]
    batch = Batch(items, timezone.now(), planning=planning)
    todo, seen = [], set()
    for channel, cm, ext in items:
        if (channel.pk, ext) not in batch.stored and (channel.pk, ext) not in seen:
            seen.add((channel.pk, ext))
            todo.append((channel, cm, ext))
    create_people(batch, todo)
    outcome = _Outcome(batch, [], {}, 0, 0)
    for payload, scored_messages, reason in scored:
        if payload.pk not in claimed:
            continue
        if reason:
            outcome.dead.setdefault(reason[:2000], []).append(payload.pk)
            continue
        for cm, ext, text, html, sc in scored_messages:
            if (payload.channel_id, ext) in batch.stored:
                outcome.duplicates += 1
                continue
            _store(payload.channel, cm, ext, text, html, sc, payload, timezone.now(), batch=batch)
            outcome.created += 1
        outcome.done.append(payload.pk)
    return outcome


# --- planning outside the write lock (SQLite) ------------------------------------------------

# Off only to compare with the classic path (tests, measurements).
PLAN_OUTSIDE_LOCK = True


class _NeedsWriteLock(BaseException):
    """Planning tried to write (an auto-reply, a new tag, a round-robin pick, an escalation,
    the bot user's first creation…): the batch is stored the classic way instead. A
    BaseException so that no `except Exception` between the write and _plan swallows it."""


class _ReadLog:
    """While planning: refuses every statement but SELECT, and keeps each distinct SELECT
    (SQL and parameters). `record()` keeps their rows, read in the planning snapshot;
    `unchanged()`, under the write lock, runs them again and compares. The batch's own
    plain-SQL reads (`_fetch`) hand their rows over as they are read, so only the others
    (ORM reads) run a second time to be recorded."""

    def __init__(self) -> None:
        self.queries: dict[tuple[str, tuple[Any, ...]], None] = {}
        self.captured: dict[tuple[str, tuple[Any, ...]], list[tuple[Any, ...]]] = {}
        self.rows: list[list[tuple[Any, ...]]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if many or not sql.lstrip("( ")[:6].upper() == "SELECT":
            raise _NeedsWriteLock(sql[:100])
        self.queries[(sql, tuple(params or ()))] = None
        return execute(sql, params, many, context)

    def _run(self, queries: Any = None) -> list[list[tuple[Any, ...]]]:
        rows = []
        with conn_itself().cursor() as cursor:
            for sql, params in self.queries if queries is None else queries:
                cursor.execute(sql, params)
                rows.append(cursor.fetchall())
        return rows

    def capture(self, sql: str, params: Sequence[Any], rows: list[tuple[Any, ...]]) -> None:
        # A copy: callers may consume or change the list they were given.
        self.captured[(sql, tuple(params))] = list(rows)

    def record(self) -> None:
        # Every read ran in the same snapshot, so rows captured while planning are what
        # running the statement again here would give.
        missing = [key for key in self.queries if key not in self.captured]
        ran = dict(zip(missing, self._run(missing), strict=True))
        self.rows = [self.captured[key] if key in self.captured else ran[key] for key in self.queries]

    def unchanged(self) -> bool:
        return self._run() == self.rows


@contextlib.contextmanager
def _read_snapshot() -> Iterator[None]:
    """One read transaction (BEGIN DEFERRED: no write lock) so that every read of the plan
    sees the same committed state. Inside a caller's transaction (tests), that is the
    snapshot."""
    if connection.in_atomic_block:
        yield
        return
    conn = conn_itself()
    conn.ensure_connection()
    mode = conn.transaction_mode
    conn.transaction_mode = "DEFERRED"
    try:
        with transaction.atomic():
            conn.transaction_mode = mode
            yield
    finally:
        conn.transaction_mode = mode


@dataclass
class _Plan:
    claimed: set[int]  # the payloads it stores (all it was given)
    outcome: _Outcome
    reads: _ReadLog


def _plan(scored: Scored) -> _Plan | None:
    """Work a batch out without the write lock: the same reads and the same _store code as
    the classic path, in a read snapshot, with writes refused and new rows kept in the Batch
    (new people and conversations get their ids ahead; see Batch._next_id).

    Storing it then holds the lock only to check and write: every payload still unclaimed,
    and every SELECT the plan ran (the dedup, identity, threading, conversation, person,
    routing and id-sequence reads) returning exactly the rows it returned, so the plan is
    what the classic path would compute under the lock. Otherwise the classic path runs.
    None when planning needs to write or fails (the classic path then handles it)."""
    claimed = {p.pk for p, _, _ in scored}
    reads = _ReadLog()
    try:
        system_user()  # created once ever, and a plan cannot write
        with _read_snapshot():
            _capturing.log = reads
            try:
                with connection.execute_wrapper(reads):
                    outcome = _store_all(scored, claimed, planning=True)
                    outcome.batch.prepare()
            finally:
                _capturing.log = None
            reads.record()
    except _NeedsWriteLock:
        return None
    except Exception:  # noqa: BLE001 - the classic path meets it again and deals with it
        log.debug("planning a batch failed; storing it the classic way", exc_info=True)
        return None
    return _Plan(claimed, outcome, reads)


# The read log of the plan this thread is making (see _plan), to which _fetch hands its
# rows. Per thread: a web process's threads may plan batches side by side, and rows read in
# one's snapshot must never stand in for the other's.
_capturing = threading.local()


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """reads.fetch for the batch's own reads; while a plan is made, the rows also go to its
    read log, which then need not run the statement again to record them."""
    rows = reads.fetch(sql, params)
    log = getattr(_capturing, "log", None)
    if log is not None:
        log.capture(sql, params, rows)
    return rows


_HOOK_MESSAGE_FIELDS = ("id", "conversation_id", "channel_id", "external_id", "person_id", "direction")


def _run_hooks(stored: list[tuple[RawPayload, list[str]]]) -> None:
    """Call the connectors' after_ingest hooks for a batch's stored payloads (see
    `_connector_hooks`). Messages are read back by external id: bulk_create does not give
    ids back on every database, and duplicates stored before the batch count too. This runs
    under the write lock, so the reads are one per channel for the whole batch, and only for
    the payloads a connector's optional `after_ingest_wanted(payload)` says it acts on (a
    Twilio text needs nothing; a finished call gets its Call row)."""
    by_channel: dict[int, list[tuple[RawPayload, list[str]]]] = {}
    hooks: dict[int, _Hooks | None] = {}  # looked up once per channel, not once per payload
    for payload, external_ids in stored:
        if not external_ids:
            continue
        if payload.channel_id not in hooks:
            hooks[payload.channel_id] = _connector_hooks(payload.channel)
        found = hooks[payload.channel_id]
        if found is None or (found.wanted is not None and not found.wanted(payload)):
            continue
        by_channel.setdefault(payload.channel_id, []).append((payload, external_ids))
    for channel_id, items in by_channel.items():
        channel, connector = items[0][0].channel, hooks[channel_id]
        assert connector is not None
        exts = list({e for _, external_ids in items for e in external_ids})
        by_ext: dict[str, Message] = {}
        for start in range(0, len(exts), 500):
            # The columns hooks use to attach rows; any other loads if a hook reads it.
            rows = _by_external_id(channel, exts[start : start + 500]).only(*_HOOK_MESSAGE_FIELDS)
            by_ext.update((m.external_id, m) for m in rows)
        messages = [
            (payload, [by_ext[e] for e in dict.fromkeys(external_ids) if e in by_ext])
            for payload, external_ids in items
        ]
        if connector.many is not None:
            connector.many(channel, messages)
        else:
            for payload, of_payload in messages:
                connector.each(channel, payload, of_payload)


def _one_by_one(payloads: list[RawPayload], result: BatchResult) -> BatchResult:
    for payload in payloads:
        try:
            for item in process_payload(payload.pk):
                if item.created:
                    result.created += 1
                else:
                    result.duplicates += 1
        except Exception:
            log.exception("payload %s failed again; left for the next attempt", payload.pk)
            continue
        result.finished += 1
    result.dead = RawPayload.objects.filter(
        pk__in=[p.pk for p in payloads], status=PayloadStatus.DEAD
    ).count()
    return result


def process_pending(*, older_than: dt.timedelta = dt.timedelta(seconds=0), limit: int = 1000) -> int:
    """Recovery sweep: payloads stored but never processed (a worker was killed, the queue
    lost a job), in batches. Returns how many payloads were finished."""
    cutoff = timezone.now() - older_than
    done = 0
    while done < limit:
        result = process_batch(limit=min(BATCH_SIZE, limit - done), received_before=cutoff)
        done += result.finished
        if not result.fetched or result.finished < result.fetched:
            break  # nothing left, or some keep failing: they wait for the next sweep
    return done


# --- a dedicated worker: parsing ahead -------------------------------------------------------

IDLE_PAUSE = 0.2  # seconds a worker waits for payloads to gather when none are pending
NICE = 10  # the parse-ahead process's niceness, relative to the worker


def _parse_ahead_loop(batches: Any, acks: Any, stop: Any, parent: int, limit: int, pause: float) -> None:
    """The parse-ahead process: read the oldest pending payloads not yet handed over, parse
    them (parse_batch) and hand them to the storing process, at most a queue's depth ahead.
    It writes nothing, so killing either process loses nothing: a payload handed over but
    not stored is still pending, and read again once the storing process says it is done
    with it (acks) or by the next worker."""
    from queue import Full

    connections.close_all()  # the parent's connection must not be shared across the fork
    # The parent's signal handlers came across the fork (inbox_worker's SIGTERM/SIGINT only
    # set a flag this loop never reads): SIGTERM ends this process at once, as close()
    # expects, and Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()  # see run_worker
    # Below the storing process and the webhooks: on a busy machine the parser should take
    # the CPU they leave, not preempt a process holding SQLite's write lock.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    handed: dict[int, None] = {}
    try:
        while not stop.is_set() and os.getppid() == parent:
            while not acks.empty():
                for pk in acks.get():
                    handed.pop(pk, None)
            payloads = _pending_payloads(limit, skip=handed)
            if not payloads:
                time.sleep(pause)
                continue
            handed.update(dict.fromkeys(p.pk for p in payloads))
            packed = _pack(parse_batch(payloads))
            while not stop.is_set() and os.getppid() == parent:
                try:
                    batches.put(packed, timeout=0.5)
                    break
                except Full:
                    continue
            _checkpoint()
            if len(payloads) < limit:
                time.sleep(pause)  # let a batch gather: each store takes SQLite's write lock
    finally:
        connections.close_all()


# What crosses from the parse-ahead process to the storing one, per payload: the columns
# storing and the hooks read. Not the model instances: pickling them (each payload with its
# body, a multipart letter's attachment included) took a tenth of the parsing process and
# unpickling them a good part of the storer's wait, for bodies nothing reads once parsed.
_PAYLOAD_CHANNEL = RawPayload._meta.get_field("channel")
_HANDED = ("id", "channel_id", "received_at", "headers", "delivery_id", "status", "attempts")


def _pack(scored: Scored) -> tuple[dict[int, Channel], list[tuple[Any, ...]]]:
    channels: dict[int, Channel] = {}
    hooked: dict[int, bool] = {}
    rows = []
    for payload, messages, reason in scored:
        if payload.channel_id not in channels:
            channels[payload.channel_id] = payload.channel
            hooked[payload.channel_id] = _connector_hooks(payload.channel) is not None
        values = tuple(getattr(payload, name) for name in _HANDED)
        # The body only where a connector's after_ingest hook may read it (Twilio's calls).
        body = payload.body if hooked[payload.channel_id] else None
        rows.append((values, body, messages, reason))
    return channels, rows


def _unpack(packed: tuple[dict[int, Channel], list[tuple[Any, ...]]]) -> Scored:
    channels, rows = packed
    scored: Scored = []
    for values, body, messages, reason in rows:
        # As read from the database with only these columns: any other (the body of a
        # payload no hook wanted) loads on first access, as a deferred field does.
        if body is None:
            payload = _bare(RawPayload, _HANDED, values)
        else:
            payload = _bare(RawPayload, (*_HANDED, "body"), (*values, body))
        _PAYLOAD_CHANNEL.set_cached_value(payload, channels[payload.channel_id])
        scored.append((payload, messages, reason))
    return scored


def _checkpoint() -> None:
    """Copy the SQLite WAL's committed pages into the database file (PASSIVE: never waits
    for readers or writers). The storing process leaves this to the parse-ahead process,
    which has CPU to spare: run by whichever commit crossed the WAL's size limit, it landed
    on the storing process, the pipeline's serial part, about one batch in two."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except OperationalError:  # best effort: the next hand-over tries again
        log.debug("WAL checkpoint skipped", exc_info=True)


class ParseAhead:
    """Parse the next batch in a second process while this one stores the current one.

    Parsing (MIME, JSON, HTML sanitising, sentiment) is pure CPU and about a third of a
    batch's work; storing needs the database and, on SQLite, its one write lock. Split in
    two processes they use two cores: the storing process only plans and writes. Use it
    as a context manager; `next()` gives a parsed batch (or None when nothing came within
    `timeout`), `done()` tells the parser those payloads may be read again if still pending
    (a batch that failed is retried, as process_batch would)."""

    def __init__(self, *, limit: int = BATCH_SIZE, depth: int = 2, pause: float = IDLE_PAUSE):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.batches = ctx.Queue(maxsize=depth)
        self.acks = ctx.SimpleQueue()
        self.stop = ctx.Event()
        connections.close_all()  # forked children must open their own connections
        self.process = ctx.Process(
            target=_parse_ahead_loop,
            args=(self.batches, self.acks, self.stop, os.getpid(), limit, pause),
            name="rapport-parse-ahead",
            daemon=True,
        )
        self.process.start()

    def next(self, timeout: float) -> Scored | None:
        from queue import Empty

        try:
            return _unpack(self.batches.get(timeout=timeout))
        except Empty:
            if not self.process.is_alive():
                raise RuntimeError("the parse-ahead process died") from None
            return None

    def done(self, scored: Scored) -> None:
        self.acks.put([p.pk for p, _, _ in scored])

    def close(self) -> None:
        self.stop.set()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
        self.batches.cancel_join_thread()

    def __enter__(self) -> "ParseAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _no_autocheckpoint() -> Iterator[None]:
    """While a parse-ahead process checkpoints (see _checkpoint), this connection's commits
    do not; as it was afterwards."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (before,) = cursor.fetchone()
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(before)}")


def has_pending() -> bool:
    """Whether any payload waits to be processed (one index probe)."""
    sql = f"SELECT 1 FROM {_PAYLOAD_TABLE} WHERE status = %s LIMIT 1"  # noqa: S608
    return reads.fetch_one(sql, [PayloadStatus.RECEIVED.value]) is not None


def run_worker(
    *,
    keep_going: Any = lambda: True,
    parse_ahead: bool = True,
    pause: float = IDLE_PAUSE,
    on_batch: Any = None,
    limit: int = BATCH_SIZE,
) -> None:
    """Store pending payloads batch after batch for as long as `keep_going()` says: it is
    asked after every batch and whenever the worker is idle, so a stop request is honoured
    after the batch in hand even under a backlog. With `parse_ahead`, a second process
    parses while this one stores (see ParseAhead). `on_batch(result)` sees every batch of
    up to `limit` payloads."""
    # A batch makes and drops a few hundred thousand objects; the collector's full passes
    # would walk everything loaded at start-up (Django, the models, the connectors) again
    # each time. Frozen, they are left out of every collection.
    gc.freeze()
    if not parse_ahead:
        while True:
            result = process_batch(limit=limit)
            if result.fetched and on_batch is not None:
                on_batch(result)
            if not keep_going():
                return
            if result.fetched < limit:
                time.sleep(pause)  # no backlog: let a batch gather
    with ParseAhead(limit=limit, pause=pause) as ahead, _no_autocheckpoint():
        while True:
            scored = ahead.next(timeout=pause)
            if scored is not None:
                try:
                    result = store_batch(scored)
                finally:
                    ahead.done(scored)
                if on_batch is not None:
                    on_batch(result)
            if not keep_going():
                return
