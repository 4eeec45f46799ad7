"""Endpoint bodies the record modules (people, organisations, deals, activities) share: a list
over a selector, the fields a PATCH sets, and a delete. Access is decided the same way
everywhere: what the caller may not see or change is a 404."""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import QuerySet
from ninja import Schema
from ninja.responses import Status

from rapport.accounts.models import User
from rapport.api.pagination import PageParams, fetch_page, page_out
from rapport.api.schemas import require_writer
from rapport.core.access import get_editable
from rapport.core.errors import ActionError
from rapport.core.http import ApiRequest
from rapport.core.models import OwnedRecord
from rapport.core.pagination import Page

M = TypeVar("M", bound=OwnedRecord)

ACCESS_FIELDS = ("owner", "team", "visibility")


def selector_page(
    select: Callable[..., Page[Any]],
    user: User,
    filters: object,
    page: PageParams,
    serialise: Callable[[User, list[Any]], list[dict[str, Any]]],
) -> dict[str, Any]:
    """A page of a list selector (`select(user=, filters=, cursor=, limit=)`), serialised for `user`."""
    result = fetch_page(
        lambda: select(user=user, filters=filters, cursor=page.cursor, limit=page.limit), page.cursor
    )
    return page_out(result, serialise(user, result.items))


def patch_fields(
    payload: Schema, nullable: set[str], access: Iterable[str] = ACCESS_FIELDS
) -> dict[str, Any]:
    """The fields a PATCH body sets. An explicit null is refused unless the field may be
    empty; the `access` fields are left out (`access_kwargs` resolves them into records)."""
    data = payload.model_dump(exclude_unset=True)
    nulls = [k for k, v in data.items() if v is None and k not in nullable]
    if nulls:
        raise ActionError("Some fields cannot be empty (null).", {k: ["May not be null."] for k in nulls})
    for key in access:
        data.pop(key, None)
    return data


def delete_record(
    request: ApiRequest,
    model: type[M],
    pk: int,
    visible: Callable[[User], QuerySet[M]],
    delete: Callable[[User, M], object],
) -> Status[None]:
    """DELETE: a writer, a record they may change (else 404), then the action."""
    user = require_writer(request)
    with transaction.atomic():
        record = get_editable(model, user, pk, visible(user))
        delete(user, record)
    return Status(204, None)
