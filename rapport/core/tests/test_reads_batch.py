"""reads.fetch_batch: several reads in one round trip on PostgreSQL, each answering what
reads.fetch answers; it recovers when the server forgot its statements or kept one that a
failed batch prepared."""

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from rapport.core import reads

pytestmark = pytest.mark.django_db

USERS = "SELECT id, username FROM accounts_user WHERE id >= %s ORDER BY id"
NAMES = "SELECT username FROM accounts_user WHERE username LIKE %s ORDER BY username"
COUNT = "SELECT COUNT(*) FROM accounts_user WHERE username LIKE 'b%%'"
pg = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def _batch():
    return [
        reads.Read(USERS, [0]),
        reads.Read(NAMES, ["%o%"], prepared=False),
        reads.Read(COUNT),
        reads.Read(USERS, [10**9]),  # no rows
    ]


def test_each_statement_answers_as_plain(alice, bob):
    expected = [reads.fetch(USERS, [0]), reads.fetch(NAMES, ["%o%"]), reads.fetch(COUNT), []]
    assert expected[0] and expected[1] == [("bob",)] and expected[2] == [(1,)]
    for _ in range(3):  # prepared on the first run, executed by name afterwards
        assert reads.fetch_batch(_batch()) == expected
    assert reads.fetch_batch([]) == []


@pg
def test_one_round_trip(alice, bob):
    reads.fetch_batch(_batch())
    with CaptureQueriesContext(connection) as queries:
        reads.fetch_batch(_batch())
    assert len(queries) == 1
    assert reads.batch_sql(queries[0]["sql"])[::2] == [USERS, USERS]  # the plain one is not named


@pg
@pytest.mark.django_db(transaction=True)  # outside a transaction, which the error would spoil
def test_again_after_the_server_forgot(alice, bob):
    expected = reads.fetch_batch(_batch())
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert reads.fetch_batch(_batch()) == expected


@pg
@pytest.mark.django_db(transaction=True)
def test_again_after_a_batch_failed_past_its_prepare(alice, bob):
    expected = reads.fetch_batch(_batch())
    reads._PREPARED.clear()  # a new connection's view: nothing known
    bad = reads.Read("SELECT CAST(%s AS integer)", ["not a number"])
    with pytest.raises(DataError):  # USERS' PREPARE ran, then the cast failed
        reads.fetch_batch([*_batch(), bad])
    assert reads.fetch_batch(_batch()) == expected


def test_a_wrong_number_of_parameters_is_refused(db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's driver checks the count itself")
    with pytest.raises(ValueError):
        reads.fetch_batch([reads.Read(USERS, [])])


@pg
@pytest.mark.django_db(transaction=True)
def test_a_stray_prepare_inside_a_transaction_leaves_the_known_statements_known(alice, bob):
    """A statement prepared by a batch that failed (42P05 next time) spoils the transaction it
    meets, but the statements this connection knows are still on the server: they are not
    forgotten, so later batches of theirs inside transactions keep working."""
    from django.db import ProgrammingError, transaction

    reads.fetch_batch([reads.Read(USERS, [0])])  # USERS known on this connection
    stray = "SELECT id FROM accounts_user WHERE id = %s"
    bad = reads.Read("SELECT CAST(%s AS integer)", ["not a number"])
    with pytest.raises(DataError):  # the stray PREPARE ran, then the cast failed
        reads.fetch_batch([reads.Read(stray, [1]), bad])
    with pytest.raises(ProgrammingError), transaction.atomic():
        reads.fetch_batch([reads.Read(stray, [1])])
    with transaction.atomic():
        assert reads.fetch_batch([reads.Read(USERS, [0])])[0]
