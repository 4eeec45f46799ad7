"""payload_store: one row per (channel, delivery), whatever the number of deliveries."""

import pytest
from django.db import transaction

from rapport.channels.actions import payload_store
from rapport.channels.models import Channel, ChannelKind, RawPayload


@pytest.fixture
def channel(db):
    return Channel.objects.create(kind=ChannelKind.WEBHOOK, name="Hook")


def test_a_new_delivery_is_stored_with_its_defaults(channel):
    payload, created = payload_store(channel=channel, body=b"{}", headers={"A": "b"}, delivery_id="d1")
    assert created
    row = RawPayload.objects.get(pk=payload.pk)
    assert (row.channel_id, row.body_bytes, row.headers, row.delivery_id) == (
        channel.pk,
        b"{}",
        {"A": "b"},
        "d1",
    )
    assert row.status == "received" and row.attempts == 0 and row.received_at is not None


def test_the_same_delivery_twice_is_one_row_and_gives_back_the_first(channel):
    first, _ = payload_store(channel=channel, body=b"one", headers={}, delivery_id="d1")
    again, created = payload_store(channel=channel, body=b"two", headers={}, delivery_id="d1")
    assert not created
    assert again.pk == first.pk and again.body_bytes == b"one"
    assert RawPayload.objects.count() == 1


def test_without_a_delivery_id_the_body_digest_deduplicates(channel):
    a, _ = payload_store(channel=channel, body=b"same", headers={})
    b, created = payload_store(channel=channel, body=b"same", headers={})
    c, created_c = payload_store(channel=channel, body=b"other", headers={})
    assert (b.pk, created) == (a.pk, False)
    assert created_c and c.pk != a.pk


def test_a_duplicate_inside_a_transaction_leaves_the_transaction_usable(channel):
    with transaction.atomic():
        payload_store(channel=channel, body=b"x", headers={}, delivery_id="d1")
        payload_store(channel=channel, body=b"x", headers={}, delivery_id="d1")
        assert RawPayload.objects.filter(channel=channel).count() == 1


def test_the_same_delivery_id_on_another_channel_is_another_row(channel):
    other = Channel.objects.create(kind=ChannelKind.WEBHOOK, name="Other")
    payload_store(channel=channel, body=b"x", headers={}, delivery_id="d1")
    _, created = payload_store(channel=other, body=b"x", headers={}, delivery_id="d1")
    assert created


def test_statements_stay_visible_to_execute_wrappers(channel):
    """On SQLite the insert goes straight to the driver, except when something watches the
    queries (tests counting them, debug tooling): then it goes through Django's cursor."""
    from django.db import connection

    seen: list[str] = []

    def watch(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        _, created = payload_store(channel=channel, body=b"x", headers={}, delivery_id="w1")
    assert created
    assert any(sql.startswith("INSERT") for sql in seen)
    # And unwatched, the same delivery is still recognised as stored.
    _, created = payload_store(channel=channel, body=b"x", headers={}, delivery_id="w1")
    assert not created


@pytest.mark.django_db(transaction=True)
def test_a_database_error_is_djangos_on_every_path():
    """The webhook views answer 503 to Django's database errors: the driver's own exceptions
    must not leak through the shortcut."""
    from django.db import IntegrityError

    live = Channel.objects.create(kind=ChannelKind.WEBHOOK, name="Live")
    payload_store(channel=live, body=b"x", headers={}, delivery_id="first")  # connected
    missing = Channel(pk=live.pk + 1000, kind=ChannelKind.WEBHOOK, name="Gone")
    with pytest.raises(IntegrityError):
        payload_store(channel=missing, body=b"x", headers={}, delivery_id="d1")
    assert not RawPayload.objects.filter(delivery_id="d1").exists()
