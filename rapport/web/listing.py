"""Query-string parameters the list screens share."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from rapport.core import reads
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


@dataclass(frozen=True, slots=True)
class OwnerChoice:
    pk: int
    label: str

    def __str__(self) -> str:
        return self.label


def owner_choices() -> list[OwnerChoice]:
    """The owner filter's options, read in plain SQL (it is on every list screen). Users are
    few (people and organisations are many): a bounded select is fine here."""
    rows = reads.fetch(
        "SELECT id, username, first_name, last_name FROM accounts_user WHERE is_active = %s "
        "ORDER BY first_name, username LIMIT 300",
        [True],
    )
    return [OwnerChoice(pk, f"{first} {last}".strip() or username) for pk, username, first, last in rows]


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
