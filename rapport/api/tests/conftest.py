"""An API client per named user, authenticated with a real bearer token."""

import json
from typing import Any

import pytest
from django.test import Client

from rapport.accounts.models import ApiToken, User

BASE = "/api/v1"


class Api:
    def __init__(self, user: User | None, raw_token: str | None = None):
        self.user = user
        if raw_token is None and user is not None:
            _, raw_token = ApiToken.issue(user=user, name="tests")
        self.token = raw_token
        headers = {"authorization": f"Bearer {raw_token}"} if raw_token else {}
        self.client = Client(headers=headers)

    def _url(self, path: str) -> str:
        return path if path.startswith("/api/") else BASE + path

    def get(self, path: str, **params: Any):
        return self.client.get(self._url(path), params)

    def post(self, path: str, data: Any = None, raw: str | None = None):
        body = raw if raw is not None else json.dumps(data if data is not None else {})
        return self.client.post(self._url(path), body, content_type="application/json")

    def patch(self, path: str, data: Any = None, raw: str | None = None):
        body = raw if raw is not None else json.dumps(data if data is not None else {})
        return self.client.patch(self._url(path), body, content_type="application/json")

    def delete(self, path: str):
        return self.client.delete(self._url(path))


@pytest.fixture
def api_as():
    return Api


@pytest.fixture
def alice_api(alice) -> Api:
    return Api(alice)


@pytest.fixture
def bob_api(bob) -> Api:
    return Api(bob)


@pytest.fixture
def carol_api(carol) -> Api:
    return Api(carol)


@pytest.fixture
def reader_api(reader) -> Api:
    return Api(reader)


@pytest.fixture
def admin_api(admin) -> Api:
    return Api(admin)
