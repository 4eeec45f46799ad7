"""reads.fetch_prepared: on PostgreSQL a statement runs as PREPARE/EXECUTE and answers what
reads.fetch answers, also after the server forgot it (DEALLOCATE ALL, as a pooler does)."""

import pytest
from django.db import connection

from rapport.core import reads

pytestmark = pytest.mark.django_db

SQL = "SELECT id, username FROM accounts_user WHERE id >= %s ORDER BY id"


def test_prepared_answers_as_plain(alice, bob):
    for _ in range(3):  # prepared on the first run, executed by name afterwards
        assert reads.fetch_prepared(SQL, [0]) == reads.fetch(SQL, [0])
    assert reads.fetch_one_prepared(SQL, [bob.pk]) == (bob.pk, "bob")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)  # outside a transaction, which the error would spoil
def test_prepared_again_after_the_server_forgot(alice):
    reads.fetch_prepared(SQL, [0])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert reads.fetch_prepared(SQL, [0]) == reads.fetch(SQL, [0])
    assert reads.prepared_sql("EXECUTE " + reads._statement(SQL)[0] + "(1)") == SQL
