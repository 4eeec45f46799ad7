"""Writes on channels and raw payloads."""

import functools
import hashlib
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from rapport.accounts.models import Team, User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.channels.models import Channel, ChannelKind, ChannelStatus, PayloadStatus, RawPayload
from rapport.core.errors import ActionError
from rapport.core.rows import column, execute_one, insert_sql


def _require_admin(actor: User) -> None:
    if not (actor.is_active and actor.is_admin):
        raise ActionError("Only administrators can manage channels.")


def payload_store(
    *, channel: Channel, body: bytes, headers: dict[str, str], delivery_id: str = ""
) -> tuple[RawPayload, bool]:
    """Durably keep what a platform sent, before answering it. The same delivery stored
    twice (platform retries, concurrent duplicates) is one row: returns (row, created)."""
    delivery_id = (delivery_id or "").strip()[:200] or "sha256:" + hashlib.sha256(body).hexdigest()
    # Positional, the channel attached as a cached relation: the keyword path (and the
    # related-object assignment) cost more than the INSERT on the ingest benchmark's receiver.
    row: list[Any] = [None, channel.pk, timezone.now(), headers, body, delivery_id]
    row += [PayloadStatus.RECEIVED, 0, "", None, None]
    payload = RawPayload(*row)
    _PAYLOAD_CHANNEL.set_cached_value(payload, channel)
    # The connection itself, looked up once: each use of the `connection` proxy is a
    # thread-local lookup, and a webhook made a dozen of them.
    conn = connections[DEFAULT_DB_ALIAS]
    if _upsert_supported(conn):
        if _insert_new(payload, conn):
            return payload, True
        return _stored_delivery(channel, delivery_id), False
    # Insert first: the partial unique index (channel, delivery_id) decides, in one indexed
    # step, whether this delivery is new. A lookup-first `.filter(...).first()` could not use
    # the partial index and re-read the channel's whole history on every webhook.
    try:
        with transaction.atomic():
            payload.save(force_insert=True)
            return payload, True
    except IntegrityError:
        return _stored_delivery(channel, delivery_id), False


def _stored_delivery(channel: Channel, delivery_id: str) -> RawPayload:
    # The `NOT (delivery_id = '')` term, written exactly as the partial unique index's
    # condition, lets the database use that index: SQLite does not see that `<> ''` implies
    # it and read every payload the channel ever had instead. Raw SQL: a retried
    # delivery is a quarter of the benchmark's traffic, and compiling the ORM query cost
    # more than running it (a RawQuerySet, too, cost twice the insert). The row comes back
    # with its id and status; any other field loads on first use, as a deferred field does.
    conn = connections[DEFAULT_DB_ALIAS]
    table = conn.ops.quote_name(RawPayload._meta.db_table)
    sql = f"SELECT id, status FROM {table} WHERE channel_id = %s AND delivery_id = %s AND NOT (delivery_id = '') LIMIT 1"  # noqa: S608
    row = execute_one(conn, sql, [channel.pk, delivery_id])
    assert row is not None, "called after the insert met this delivery's row"
    pk, status = row
    payload = RawPayload.from_db(
        conn.alias, ["id", "channel_id", "delivery_id", "status"], [pk, channel.pk, delivery_id, status]
    )
    _PAYLOAD_CHANNEL.set_cached_value(payload, channel)
    return payload


def _upsert_supported(conn: Any) -> bool:
    return conn.vendor in ("sqlite", "postgresql") and bool(conn.features.can_return_columns_from_insert)


_PAYLOAD_CHANNEL = RawPayload._meta.get_field("channel")
assert [f.attname for f in RawPayload._meta.concrete_fields] == [
    "id",
    "channel_id",
    "received_at",
    "headers",
    "body",
    "delivery_id",
    "status",
    "attempts",
    "error",
    "processed_at",
    "replayed_by_id",
], "payload_store builds RawPayload positionally"


@functools.cache
def _insert_returning(vendor: str) -> tuple[str, Any]:
    sql, values = insert_sql(RawPayload, vendor, ignore_conflicts=True)
    return (
        f"{sql} RETURNING {connections[DEFAULT_DB_ALIAS].ops.quote_name(column(RawPayload._meta.pk))}",
        values,
    )


def _insert_new(payload: RawPayload, conn: Any) -> bool:
    """One `INSERT … ON CONFLICT DO NOTHING RETURNING id`: the unique index decides whether
    the delivery is new, in one statement. The receiver is the ingest benchmark's limit, and
    the ORM's create in a savepoint (BEGIN, compile, INSERT, COMMIT; an IntegrityError and a
    rollback for every retried delivery) cost about three times as much. DO NOTHING covers
    uniqueness only: any other failure raises as before."""
    sql, values = _insert_returning(conn.vendor)
    row = execute_one(conn, sql, values(payload, conn))
    if row is None:
        return False
    payload.pk = row[0]
    payload._state.adding = False
    payload._state.db = conn.alias
    return True


def enqueue_processing(payload: RawPayload) -> None:
    """Queue the payload after the current transaction commits. If the queue is down the
    payload stays "received" and the recovery sweep (`rapport inbox_sweep`) picks it up."""
    import logging

    def _go() -> None:
        from rapport.conversations.tasks import process_raw_payload

        try:
            process_raw_payload.enqueue(payload.pk)
        except Exception:
            logging.getLogger(__name__).exception("could not enqueue payload %s", payload.pk)

    transaction.on_commit(_go)


@transaction.atomic
def payload_replay(*, actor: User, payload: RawPayload) -> RawPayload:
    """Send a dead letter through the pipeline again (after fixing a connector or a channel).
    Safe: messages already stored from it are found by their external id, not duplicated."""
    _require_admin(actor)
    if payload.status == PayloadStatus.PROCESSED:
        raise ActionError("This payload was processed already.")
    RawPayload.objects.filter(pk=payload.pk).update(
        status=PayloadStatus.RECEIVED, replayed_by=actor, attempts=0
    )
    audit_record(
        actor=actor, obj=payload, action=AuditEntry.Action.UPDATE, summary=f"Replayed payload {payload.pk}"
    )
    payload.refresh_from_db()
    enqueue_processing(payload)
    return payload


CHANNEL_FIELDS = {"name", "team", "status", "settings", "credentials"}


def _validate(data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if "name" in data and not (isinstance(data["name"], str) and 0 < len(data["name"].strip()) <= 100):
        errors["name"] = ["Between 1 and 100 characters."]
    if "status" in data and data["status"] not in ChannelStatus.values:
        errors["status"] = [f"Choose one of {', '.join(ChannelStatus.values)}."]
    if "settings" in data and not isinstance(data["settings"], dict):
        errors["settings"] = ["An object."]
    if "credentials" in data and not isinstance(data["credentials"], dict):
        errors["credentials"] = ["An object."]
    if "team" in data and data["team"] is not None and not isinstance(data["team"], Team):
        errors["team"] = ["Unknown team."]
    if errors:
        raise ActionError("Check the channel settings.", errors)


@transaction.atomic
def channel_create(
    *,
    actor: User,
    kind: str,
    name: str,
    team: Team | None = None,
    credentials: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Channel:
    _require_admin(actor)
    if kind not in ChannelKind.values:
        raise ActionError(
            "Unknown channel kind.", {"kind": [f"Choose one of {', '.join(ChannelKind.values)}."]}
        )
    data = {"name": name, "team": team, "credentials": credentials or {}, "settings": settings or {}}
    _validate(data)
    channel = Channel(kind=kind, name=name.strip(), team=team, settings=settings or {})
    channel.credentials = credentials or {}
    channel.save()
    audit_record(
        actor=actor, obj=channel, action=AuditEntry.Action.CREATE, summary=f"Created channel {channel.name}"
    )
    return channel


@transaction.atomic
def channel_update(*, actor: User, channel: Channel, data: dict[str, Any]) -> Channel:
    """`credentials` replaces the stored secrets only when given (they are never shown back)."""
    _require_admin(actor)
    unknown = set(data) - CHANNEL_FIELDS
    if unknown:
        raise ActionError(f"Unknown fields: {', '.join(sorted(unknown))}")
    _validate(data)
    changed = sorted(k for k in data if k != "credentials")
    if "credentials" in data:
        channel.credentials = data.pop("credentials")
        changed.append("credentials")
    for key, value in data.items():
        setattr(channel, key, value.strip() if key == "name" else value)
    if data.get("status") == ChannelStatus.ACTIVE:
        channel.last_error = ""
    channel.updated_at = timezone.now()
    channel.save()
    audit_record(
        actor=actor, obj=channel, action=AuditEntry.Action.UPDATE, summary=f"Changed {', '.join(changed)}"
    )
    return channel


@transaction.atomic
def channel_delete(*, actor: User, channel: Channel) -> None:
    _require_admin(actor)
    if channel.messages.exists() or channel.payloads.exists():
        raise ActionError("This channel has received messages; disable it instead so its history stays.")
    audit_record(
        actor=actor, obj=channel, action=AuditEntry.Action.DELETE, summary=f"Deleted channel {channel.name}"
    )
    channel.delete()
