"""Request types for code that only runs for a signed-in user.

`HttpRequest.user` is `User | AnonymousUser`; behind `@login_required` (web views) or the API's
authentication (django-ninja endpoints) it is always our `User`. Annotating the request with
these types says so once, instead of asserting it in every view. They are annotations only: the
object at runtime is still Django's request, so use them only where authentication is enforced
before the code runs."""

from typing import Any

from django.http import HttpRequest

from rapport.accounts.models import User


class AuthedRequest(HttpRequest):
    """A request to a view behind `@login_required`."""

    user: User


class ApiRequest(HttpRequest):
    """A request to an authenticated django-ninja endpoint: `auth` is what
    `rapport.api.auth.BearerOrSession` returned, and the bearer path also sets `user`."""

    auth: User
    user: User


def int_param(value: Any) -> int | None:
    """A positive database id from a query or form value, or None: a mangled id in a URL or
    form is a miss (404 or ignored), never a ValueError from the database layer."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def concrete_user(request: AuthedRequest) -> User:
    """The request's user itself rather than Django's lazy proxy around it. Every attribute
    read through the proxy costs a wrapper call; a loop doing access checks per row (the
    board's 180 cards) spent more on that than on the checks."""
    user = request.user
    user.pk  # noqa: B018 — evaluates the lazy object
    return getattr(user, "_wrapped", user)
