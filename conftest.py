"""Shared test fixtures: two teams with named people in different roles, so access tests read
like stories ("Bob from South must not see Alice's private deal")."""

import pytest
from django.test import Client

from rapport.accounts.models import Role, Team, User


@pytest.fixture
def north(db) -> Team:
    return Team.objects.create(name="North")


@pytest.fixture
def south(db) -> Team:
    return Team.objects.create(name="South")


def _user(username: str, role: str, *teams: Team, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username=username,
        password="correct-horse-battery",
        role=role,
        first_name=username.title(),
        email=f"{username}@rapport.test",
        is_superuser=superuser,
    )
    user.teams.set(teams)
    return user


@pytest.fixture
def alice(north) -> User:
    """Sales rep in North."""
    return _user("alice", Role.SALES, north)


@pytest.fixture
def bob(south) -> User:
    """Sales rep in South."""
    return _user("bob", Role.SALES, south)


@pytest.fixture
def carol(north) -> User:
    """Manager of North."""
    return _user("carol", Role.MANAGER, north)


@pytest.fixture
def reader(north) -> User:
    """Read-only user in North."""
    return _user("reader", Role.READ_ONLY, north)


@pytest.fixture
def admin(db) -> User:
    return _user("admin", Role.ADMIN, superuser=True)


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice) -> Client:
    return login(alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return login(bob)


@pytest.fixture(autouse=True)
def _fresh_fragment_cache():
    """Template fragments cached in one test (a form listing that test's users) must not leak
    into the next. Only the in-process cache is cleared: a shared Redis is not ours to flush."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()
    yield
