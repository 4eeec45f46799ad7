"""API authentication: a bearer token (scripts, integrations) or the browser session (the web
UI's own fetches, CSRF-checked by django-ninja's session auth)."""

from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from rapport.accounts.models import ApiToken


class _Bearer(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


class _Session(APIKeyCookie):
    param_name = "sessionid"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


class BearerOrSession:
    """Callable auth for NinjaAPI: tries the bearer token, then the session (with CSRF)."""

    def __init__(self) -> None:
        self.bearer = _Bearer()
        self.session = _Session(csrf=True)

    def __call__(self, request: HttpRequest) -> Any:
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return self.bearer(request)
        return self.session(request)
