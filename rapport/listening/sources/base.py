"""What every listening source shares: the normalised mention, the poll loop with cursors,
rate-limit backoff and per-item error isolation.

A source kind is a folder `sources/<kind>/` with `normalise.py` (platform item → mention
dict; raises `BadItem`), `poller.py` (a `Poller` subclass: which URLs to ask, how to read
the answer, how to move the cursor), `fixtures/` in the platform's documented format,
`tests/` and `doc.md`.

The loop, per cursor key: skip while rate limited → fetch with the cursor (since_id, ETag,
Last-Modified) → 429: wait Retry-After (or back off exponentially) → parse (a hostile or
broken document is rejected as a whole and logged; nothing stored is touched) → normalise
each item (a bad item is logged and counted, the others go on) → ingest (dedup, match,
score, store) → only then advance the cursor, so a crash re-reads rather than loses."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import html
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import nh3
from django.db import models
from django.utils import timezone

from rapport.listening.http import FetchError, Response, fetch
from rapport.listening.models import ListeningQuery, ListeningSource, SourceCursor

log = logging.getLogger("rapport.listening")

MAX_BACKOFF = dt.timedelta(hours=6)
BASE_BACKOFF = dt.timedelta(minutes=1)


class BadItem(Exception):
    """One item of an otherwise fine answer cannot be read."""


class BadDocument(Exception):
    """The whole answer is unreadable or hostile; nothing of it is used."""


# --- helpers shared by normalisers ----------------------------------------------------

_BLOCK = re.compile(r"(?i)<\s*(br|/p|/div|/li|/h[1-6]|/blockquote)\b[^>]*>")
_HREF = re.compile(r"""(?i)<a\b[^>]*\bhref\s*=\s*["']([^"']+)["'][^>]*>""")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def html_to_text(value: str) -> str:
    """Plain text of untrusted HTML: nh3 drops every tag (and script/style content), block
    ends become newlines, entities are decoded once."""
    if not value:
        return ""
    value = _BLOCK.sub("\n", value)
    cleaned = nh3.clean(value, tags=set(), clean_content_tags={"script", "style"})
    text = html.unescape(cleaned)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line).replace("\x00", "")


def links_in_html(value: str, *, skip_classes: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for match in _HREF.finditer(value or ""):
        tag = match.group(0)
        if skip_classes and any(c in tag for c in skip_classes):
            continue
        url = html.unescape(match.group(1))
        if url.startswith(("http://", "https://")) and url not in out:
            out.append(url[:1000])
    return out[:20]


def parse_datetime(value: Any) -> dt.datetime | None:
    """ISO 8601 or RFC 2822, or epoch seconds; None when unreadable (the caller decides)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(text)
        if parsed is None:
            return None
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def sane_time(value: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """A post cannot be from the future or before the web: clamp to the fetch time."""
    if value is None or value > now + dt.timedelta(minutes=5) or value.year < 1995:
        return now
    return value


def obj(value: Any) -> dict[str, Any]:
    """A JSON object from an untrusted payload, or {} when it is anything else (null, a list,
    a string): normalisers read nested fields without trusting the payload's shape."""
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    """A JSON array from an untrusted payload, or [] when it is anything else."""
    return value if isinstance(value, list) else []


def hash_id(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def as_int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def id_greater(a: str, b: str) -> bool:
    """Snowflake ids compare as numbers; they are strings in JSON."""
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a > b


# --- poller ---------------------------------------------------------------------------


@dataclass
class Page:
    items: list[Any]
    cursor: dict[str, str] = field(default_factory=dict)  # SourceCursor fields to set after storing


@dataclass
class PollResult:
    source_id: int
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    bad_items: int = 0
    errors: list[str] = field(default_factory=list)
    rate_limited: int = 0
    not_modified: int = 0

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Poller:
    """Subclasses say what to ask and how to read it; `poll` does the rest."""

    kind = ""

    def __init__(self, source: ListeningSource):
        self.source = source
        self.config = source.config if isinstance(source.config, dict) else {}

    # --- to override

    def keys(self) -> list[str]:
        raise NotImplementedError

    def request(self, key: str, cursor: SourceCursor) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def read(self, key: str, cursor: SourceCursor, response: Response) -> Page:
        raise NotImplementedError

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        raise NotImplementedError

    # --- shared

    def terms(self) -> list[str]:
        """Search terms: configured ones, else what the active queries look for."""
        configured = [str(t).strip() for t in self.config.get("terms", []) if str(t).strip()]
        if configured:
            return configured[:20]
        from rapport.listening.query import QuerySyntaxError, parse, positive_terms

        out: list[str] = []
        for q in ListeningQuery.objects.filter(is_active=True).only("text", "sources"):
            if q.sources and self.kind not in q.sources:
                continue
            try:
                out += positive_terms(parse(q.text))[:3]
            except QuerySyntaxError:
                continue
        return list(dict.fromkeys(out))[:20]

    def poll(self, *, now: dt.datetime | None = None) -> PollResult:
        now = now or timezone.now()
        result = PollResult(source_id=self.source.pk)
        for key in self.keys():
            cursor, _ = SourceCursor.objects.get_or_create(source=self.source, key=key[:300])
            if cursor.not_before and cursor.not_before > now:
                result.rate_limited += 1
                continue
            try:
                url, headers = self.request(key, cursor)
                response = fetch(url, headers=headers)
            except FetchError as exc:
                self._fail(result, cursor, key, str(exc), now, backoff=not exc.permanent)
                continue
            if response.status == 429 or (response.status == 503 and response.header("retry-after")):
                cursor.not_before = now + retry_after(response, cursor.failures, now)
                cursor.failures += 1
                cursor.updated_at = now
                cursor.save(update_fields=["not_before", "failures", "updated_at"])
                result.rate_limited += 1
                log.warning(
                    "listening source %s (%s) rate limited on %r until %s",
                    self.source.pk,
                    self.kind,
                    key,
                    cursor.not_before.isoformat(),
                )
                continue
            if response.status == 304:
                result.not_modified += 1
                self._ok(cursor, {}, now)
                continue
            if response.status >= 400:
                self._fail(
                    result,
                    cursor,
                    key,
                    f"HTTP {response.status} from {self.kind}",
                    now,
                    backoff=response.status >= 500,
                )
                continue
            try:
                page = self.read(key, cursor, response)
            except BadDocument as exc:
                self._fail(result, cursor, key, f"rejected document: {exc}", now, backoff=False)
                continue
            self.store(result, page.items, now)
            self._ok(cursor, page.cursor, now)
        self._finish(result, now)
        return result

    def store(self, result: PollResult, raw_items: list[Any], now: dt.datetime) -> None:
        """Normalise each item (a bad one is logged, counted and skipped) and ingest the rest."""
        from rapport.listening.ingest import ingest_mentions

        items: list[dict[str, Any]] = []
        for raw in raw_items:
            result.fetched += 1
            try:
                items.append(self.normalise(raw, now))
            except (BadItem, KeyError, TypeError, ValueError, AttributeError) as exc:
                result.bad_items += 1
                log.warning(
                    "listening source %s (%s): skipped a bad item: %s", self.source.pk, self.kind, exc
                )
        ingested = ingest_mentions(items, source=self.source, now=now)
        result.stored += ingested.stored
        result.duplicates += ingested.duplicates
        result.bad_items += ingested.bad

    def _ok(self, cursor: SourceCursor, updates: dict[str, str], now: dt.datetime) -> None:
        for name, value in updates.items():
            column = SourceCursor._meta.get_field(name)
            limit = (column.max_length if isinstance(column, models.Field) else None) or 300
            setattr(cursor, name, (value or "")[:limit])
        cursor.failures = 0
        cursor.not_before = None
        cursor.updated_at = now
        cursor.save()

    def _fail(
        self,
        result: PollResult,
        cursor: SourceCursor,
        key: str,
        message: str,
        now: dt.datetime,
        *,
        backoff: bool,
    ) -> None:
        log.error("listening source %s (%s) on %r: %s", self.source.pk, self.kind, key, message)
        result.errors.append(f"{key}: {message}"[:500])
        cursor.failures += 1
        if backoff:
            cursor.not_before = now + exponential(cursor.failures)
        cursor.updated_at = now
        cursor.save(update_fields=["failures", "not_before", "updated_at"])

    def _finish(self, result: PollResult, now: dt.datetime) -> None:
        fields: dict[str, Any] = {
            "last_polled_at": now,
            "fetched_total": self.source.fetched_total + result.fetched,
            "stored_total": self.source.stored_total + result.stored,
            "bad_items_total": self.source.bad_items_total + result.bad_items,
        }
        if result.errors:
            fields["last_error"] = "; ".join(result.errors)[:2000]
            fields["last_error_at"] = now
        ListeningSource.objects.filter(pk=self.source.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.source, name, value)


def exponential(failures: int) -> dt.timedelta:
    return min(MAX_BACKOFF, BASE_BACKOFF * (2 ** max(0, min(failures, 20) - 1)))


def retry_after(response: Response, failures: int, now: dt.datetime) -> dt.timedelta:
    """Retry-After in seconds or as an HTTP date; X's x-rate-limit-reset (epoch); otherwise
    exponential backoff. Never less than a second, never more than six hours."""
    value = response.header("retry-after").strip()
    wait: dt.timedelta | None = None
    if value.isdigit():
        wait = dt.timedelta(seconds=int(value))
    elif value:
        when = parse_datetime(value)
        if when is not None:
            wait = when - now
    if wait is None and response.header("x-rate-limit-reset").isdigit():
        wait = dt.datetime.fromtimestamp(int(response.header("x-rate-limit-reset")), tz=dt.UTC) - now
    if wait is None:
        wait = exponential(failures + 1)
    return max(dt.timedelta(seconds=1), min(MAX_BACKOFF, wait))
