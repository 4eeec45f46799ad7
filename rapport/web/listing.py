"""Query-string parameters the list screens share."""

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest

from rapport.accounts.models import User
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest, int_param
from rapport.core.pagination import Page


def bool_param(value: str | None) -> bool | None:
    return {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}.get(
        (value or "").strip().lower()
    )


def owner_param(request: AuthedRequest) -> int | None:
    raw = request.GET.get("owner", "")
    return request.user.pk if raw == "me" else int_param(raw)


def owner_choices() -> list[User]:
    # Users are few (people and organisations are many): a bounded select is fine here.
    return list(User.objects.filter(is_active=True).order_by("first_name", "username")[:300])


def query_without(request: HttpRequest, *keys: str) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


def list_page(
    request: AuthedRequest,
    fetch: Callable[[str | None], Page[Any]],
    *,
    nav: str,
    filters: Any,
    sorts: Iterable[str],
) -> tuple[Page[Any], dict[str, Any], int]:
    """Run a list screen's keyset query with the request's cursor and build the context every
    list screen shares. An unknown sort or a bad cursor is a 400 with the message, not a 500."""
    error = None
    try:
        page = fetch(request.GET.get("cursor") or None)
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    context = {
        "nav": nav,
        "page": page,
        "filters": filters,
        "error": error,
        "sorts": list(sorts),
        "owners": owner_choices(),
        "owner_raw": request.GET.get("owner", ""),
        "export_query": query_without(request, "cursor"),
        "is_first_page": not request.GET.get("cursor"),
    }
    return page, context, 400 if error else 200
