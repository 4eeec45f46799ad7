"""Keyset (cursor) pagination: a page costs the same at row 10 and row 1,000,000, and rows
inserted meanwhile never shift the page boundary."""

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet

from rapport.core.errors import ActionError

T = TypeVar("T", bound=Model)
Item = TypeVar("Item")  # a page holds model instances or plain rows (core.reads)

CAP = 1000  # counts stop here: an exact count over a million rows is slow and nobody reads it (a tag filter over 1M people spent 20 ms counting to 10,000)


@dataclass
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None
    total: int | None = None
    total_capped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(values: list[Any]) -> str:
    def conv(v: Any) -> Any:
        if isinstance(v, dt.datetime | dt.date):
            return {"t": v.isoformat(), "k": "dt" if isinstance(v, dt.datetime) else "d"}
        if isinstance(v, Decimal):
            return {"t": str(v), "k": "dec"}
        return v

    raw = json.dumps([conv(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list):
            raise ValueError
    except (ValueError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise ActionError(
            "The page cursor is not valid; start again from the first page.", {"cursor": ["Invalid cursor."]}
        )
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict) and "k" in v:
            try:
                out.append(
                    dt.datetime.fromisoformat(v["t"])
                    if v["k"] == "dt"
                    else dt.date.fromisoformat(v["t"])
                    if v["k"] == "d"
                    else Decimal(v["t"])
                )
            except (ValueError, TypeError, ArithmeticError):
                raise ActionError("The page cursor is not valid.", {"cursor": ["Invalid cursor."]})
        elif v is None or isinstance(v, str | int | float):
            out.append(v)
        else:
            raise ActionError("The page cursor is not valid.", {"cursor": ["Invalid cursor."]})
    return out


def keyset_page(
    qs: QuerySet[T],
    order: list[str],
    cursor: str | None,
    limit: int,
    with_total: bool = False,
    count_qs: QuerySet[T] | None = None,
) -> Page[T]:
    """`order` like ["sort_key", "id"] or ["-created_at", "-id"]; the last field must be unique.
    Null values are not supported in order fields (keys are non-null by design). `count_qs`
    selects the same rows as `qs` in a form that counts faster (see people.selectors)."""
    limit = max(1, min(int(limit), 200))
    total = capped = None
    if with_total:
        total = (count_qs if count_qs is not None else qs).order_by()[: CAP + 1].count()
        capped = total > CAP
        total = min(total, CAP)
    qs = qs.order_by(*order)
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != len(order):
            raise ActionError("The page cursor is not valid.", {"cursor": ["Invalid cursor."]})
        condition = Q()
        for i, name in enumerate(order):
            field_name = name.lstrip("-")
            op = "lt" if name.startswith("-") else "gt"
            step = Q(**{f"{field_name}__{op}": values[i]})
            for j in range(i):
                step &= Q(**{order[j].lstrip("-"): values[j]})
            condition |= step
        # The OR above is exact but neither database turns it into an index range, so page N
        # would walk every row of the pages before it. The redundant bound on the first key
        # starts the index scan at the cursor.
        first = order[0].lstrip("-")
        bound = Q(**{f"{first}__{'lte' if order[0].startswith('-') else 'gte'}": values[0]})
        qs = qs.filter(bound & condition)
    rows = list(qs[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([_attr(last, n.lstrip("-")) for n in order])
    return Page(items=rows, next_cursor=next_cursor, total=total, total_capped=bool(capped))


def _attr(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj
