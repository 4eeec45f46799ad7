"""The per-request user and session reads (plain SQL, accounts/backends.py and sessions.py)
behave like Django's own: same user, team ids, expiry, and a bad session is a fresh one."""

import datetime as dt

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from rapport.accounts.backends import AuthBackend
from rapport.accounts.models import Team, User
from rapport.accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_user_is_loaded_with_its_fields_and_teams(alice, north, south):
    alice.teams.add(south)
    user = AuthBackend().get_user(str(alice.pk))
    assert isinstance(user, User)
    assert (user.pk, user.username, user.role, user.email, user.is_active) == (
        alice.pk, "alice", alice.role, alice.email, True,
    )  # fmt: skip
    assert user.date_joined == User.objects.get(pk=alice.pk).date_joined  # aware, as the ORM gives it
    assert sorted(user.team_ids()) == sorted([north.pk, south.pk])
    assert user.check_password("correct-horse-battery")


@pytest.mark.parametrize("bad", [None, "", "x", "12abc", "999999"])
def test_unknown_or_malformed_ids_are_nobody(db, bad):
    assert AuthBackend().get_user(bad) is None


def test_inactive_user_is_logged_out(alice):
    client = Client()
    client.force_login(alice)
    assert client.get("/people/").status_code == 200
    User.objects.filter(pk=alice.pk).update(is_active=False)
    response = client.get("/people/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_user_without_teams(db):
    user = User.objects.create_user(username="solo", password="correct-horse-battery")
    assert AuthBackend().get_user(user.pk).team_ids() == []  # type: ignore[union-attr]
    assert Team.objects.count() == 0


def test_session_round_trip_and_expiry(db):
    store = SessionStore()
    store["answer"] = 42
    store.create()
    assert SessionStore(store.session_key)["answer"] == 42
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    expired = SessionStore(store.session_key)
    assert expired.get("answer") is None and expired.session_key is None


def test_tampered_session_data_is_an_empty_session(db):
    store = SessionStore()
    store["answer"] = 42
    store.create()
    Session.objects.filter(session_key=store.session_key).update(session_data="not-signed-data")
    assert dict(SessionStore(store.session_key).items()) == {}


def test_login_and_logout_through_the_pages(alice):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert client.get("/people/").status_code == 200
    client.post("/logout/")
    assert client.get("/people/").status_code == 302
