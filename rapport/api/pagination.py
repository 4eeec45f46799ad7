"""Cursor pagination for list endpoints, on top of the selectors' keyset pages.

Every list answers `{"items": [...], "next_cursor": "...", "total": n, "total_capped": bool}`;
pass `next_cursor` back as `?cursor=` until it is null."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model
from ninja import Schema
from pydantic import Field

from rapport.core.errors import ActionError
from rapport.core.pagination import Page

T = TypeVar("T", bound=Model)

MAX_LIMIT = 200


class PageParams(Schema):
    cursor: str | None = Field(None, max_length=1000, description="`next_cursor` of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")


def fetch_page(load: Callable[[], Page[T]], cursor: str | None) -> Page[T]:
    """Run a selector; a cursor that decodes but holds values of the wrong type (hand-edited
    or from another sort order) makes the database layer raise, which is the client's error."""
    try:
        return load()
    except ActionError:
        raise
    except (ValueError, TypeError, OverflowError, ValidationError):
        if not cursor:
            raise
        raise ActionError(
            "The page cursor is not valid; start again from the first page.", {"cursor": ["Invalid cursor."]}
        )


def page_out(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    return {
        "items": items,
        "next_cursor": page.next_cursor,
        "total": page.total,
        "total_capped": page.total_capped,
    }


def page_schema(name: str, item: type[Schema]) -> type[Schema]:
    """A named page schema per item type, so the OpenAPI document shows real item shapes."""
    return type(
        name,
        (Schema,),
        {
            "__annotations__": {
                "items": list[item],  # type: ignore[valid-type]
                "next_cursor": str | None,
                "total": int | None,
                "total_capped": bool,
            },
            "__module__": __name__,
        },
    )
