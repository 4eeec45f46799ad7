"""The session read brings the user it named last time along (sessions.py): the page still
gets the user the session names now, with their current row, and logs out whoever the
ModelBackend would log out."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from rapport.accounts import backends, sessions
from rapport.accounts.backends import AuthBackend
from rapport.accounts.models import User
from rapport.accounts.sessions import SessionStore
from rapport.core import reads

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_known_session_reads_its_user_in_the_same_round_trip(alice):
    client = _client(alice)
    client.get("/people/")  # the session is loaded once: its user is remembered
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/people/").status_code == 200
    sqls = [s for q in queries for s in reads.batch_sql(q["sql"])]
    assert sum("FROM django_session" in s for s in sqls) == 1
    assert sum("FROM accounts_user u LEFT OUTER JOIN accounts_user_teams" in s for s in sqls) == 1
    if connection.vendor == "postgresql":
        first = reads.batch_sql(queries[0]["sql"])
        assert "FROM django_session" in first[0] and "accounts_user u" in first[1]


def test_the_user_the_session_names_now_wins_over_the_remembered_one(alice, bob):
    client = _client(alice)
    key = client.cookies["sessionid"].value
    sessions._USER_OF[key] = bob.pk  # remembered wrong: bob's rows are read along
    response = client.get("/people/")
    assert response.status_code == 200 and response.wsgi_request.user.pk == alice.pk
    assert sessions._USER_OF[key] == alice.pk


def test_a_password_change_or_deactivation_still_logs_out(alice, bob):
    client = _client(alice)
    assert client.get("/people/").status_code == 200
    alice.set_password("another-horse-battery")
    alice.save()
    assert client.get("/people/").status_code == 302  # the session's hash no longer matches
    client = _client(bob)
    assert client.get("/people/").status_code == 200
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert client.get("/people/").status_code == 302


def test_rows_read_ahead_serve_one_get_user_of_that_user_in_that_request(alice, bob):
    stale = reads.fetch_prepared(backends._SQL, [alice.pk])
    User.objects.filter(pk=alice.pk).update(first_name="Renamed")
    backends.prefetched(alice.pk, stale)
    assert AuthBackend().get_user(bob.pk).pk == bob.pk  # another user: read as usual
    assert AuthBackend().get_user(alice.pk).first_name == "Renamed"  # dropped by then
    backends.prefetched(alice.pk, stale)
    assert AuthBackend().get_user(alice.pk).first_name == "Alice"  # the rows read ahead
    assert AuthBackend().get_user(alice.pk).first_name == "Renamed"  # once only
    backends.prefetched(alice.pk, stale)
    request_finished.disconnect(close_old_connections)  # as the test client does
    try:
        request_finished.send(sender=None)
    finally:
        request_finished.connect(close_old_connections)
    assert AuthBackend().get_user(alice.pk).first_name == "Renamed"  # not past the request


def test_a_session_without_a_user_or_gone_is_remembered_as_such(alice):
    store = SessionStore()
    store["answer"] = 42
    store.create()
    assert SessionStore(store.session_key)["answer"] == 42
    assert store.session_key not in sessions._USER_OF
    store = SessionStore()
    store[SESSION_KEY] = str(alice.pk)
    store.create()
    assert SessionStore(store.session_key)[SESSION_KEY] == str(alice.pk)
    assert sessions._USER_OF[store.session_key] == alice.pk
    assert SessionStore("no-such-key-000000000000000000000").get(SESSION_KEY) is None
