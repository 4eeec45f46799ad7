"""Query-string parameters the list screens share."""

from django.http import HttpRequest

from rapport.accounts.models import User
from rapport.core.http import AuthedRequest, int_param


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
