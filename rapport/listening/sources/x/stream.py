"""X API v2 filtered stream: `GET /2/tweets/search/stream` sends every new tweet matching
the app's rules as one JSON object per line, with a blank keep-alive line every 20 s.

Rules (`POST /2/tweets/search/stream/rules`) are ours when tagged `rapport:<source id>`:
they are made from the source's `rules` (X rule syntax), else its `terms`, else the active
queries' positive terms (as for recent search), each with `-is:retweet`. A sync runs only when
that wanted set changed (its digest is kept on the `rules` cursor); rules others made are
never touched.

Two ways to run, sharing everything below:

- **bounded** (the default, what `rapport listen` and the scheduler do for every source):
  connect, read for at most `read_seconds` (25) or `max_tweets` (1,000), store, disconnect.
  Tweets posted while disconnected are not delivered (the stream has no since_id; X's
  `backfill_minutes` is for higher tiers): right for low volumes or as a companion to recent
  search, which fills the gaps (the same tweet from both is stored once).
- **continuous**: `rapport listen --stream SOURCE_ID` keeps one connection open and stores
  what arrives every few seconds. Set `"mode": "continuous"` on the source so the scheduler's
  bounded reads leave it alone (two connections would make X drop one).

Reconnection follows X's documented backoff, kept on the `stream` cursor: an established
connection that ends or stalls (nothing for 21 s) is retried at once; network errors back off
linearly (+250 ms a time, at most 16 s); HTTP errors exponentially from 5 s up to 320 s;
429 exponentially from one minute (or until `x-rate-limit-reset` if later)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone

from rapport.listening.http import FetchError, Response, StreamStalled, fetch, open_stream, post_json
from rapport.listening.models import SourceCursor
from rapport.listening.sources import base
from rapport.listening.sources.x import normalise as xn

log = logging.getLogger("rapport.listening")

STREAM_API = "https://api.x.com/2/tweets/search/stream"
STALL_SECONDS = 21.0  # keep-alives come every 20 s, sometimes a little late
READ_SECONDS = 25.0
MAX_TWEETS = 1000
MAX_RULES = 25
MAX_RULE_CHARS = 512
FLUSH_TWEETS = 100
FLUSH_SECONDS = 5.0


def network_backoff(failures: int) -> dt.timedelta:
    return dt.timedelta(milliseconds=min(16_000, 250 * max(1, failures)))


def http_backoff(failures: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(320, 5 * 2 ** max(0, min(failures, 10) - 1)))


def rate_limit_backoff(failures: int, reset: str, now: dt.datetime) -> dt.timedelta:
    wait = dt.timedelta(minutes=2 ** max(0, min(failures, 20) - 1))
    if reset.isdigit():
        wait = max(wait, dt.datetime.fromtimestamp(int(reset), tz=dt.UTC) - now)
    return min(base.MAX_BACKOFF, wait)


class Poller(base.Poller):
    # The tweets are X mentions: queries limited to "x" apply, dedup is shared with search.
    kind = "x"

    def __init__(self, source: Any):
        super().__init__(source)
        self.clock: Callable[[], float] = time.monotonic  # tests move time on
        self.should_stop: Callable[[], bool] = lambda: False  # checked at every line and keep-alive

    @property
    def tag(self) -> str:
        return f"rapport:{self.source.pk}"

    @property
    def api(self) -> str:
        return str(self.config.get("stream_api") or STREAM_API).rstrip("/")

    def wanted_rules(self) -> list[str]:
        configured = [str(r).strip() for r in self.config.get("rules") or [] if str(r).strip()]
        rules = configured or [xn.without_retweets(t) for t in self.terms()]
        out = []
        for rule in dict.fromkeys(rules):
            if len(rule) > MAX_RULE_CHARS:
                log.warning(
                    "X stream source %s: rule over %s characters skipped", self.source.pk, MAX_RULE_CHARS
                )
                continue
            out.append(rule)
        return out[:MAX_RULES]

    # --- rules ---------------------------------------------------------------------------

    def sync_rules(self, result: base.PollResult, now: dt.datetime) -> None:
        """Make our tagged rules equal the wanted set: delete the stale, add the missing."""
        wanted = self.wanted_rules()
        digest = hashlib.sha256("\n".join(sorted(wanted)).encode()).hexdigest()[:32]
        cursor, _ = SourceCursor.objects.get_or_create(source=self.source, key="rules")
        if cursor.etag == digest or (cursor.not_before and cursor.not_before > now):
            return
        headers = xn.auth_headers(self.source)
        try:
            listed = fetch(f"{self.api}/rules", headers=headers)
            if listed.status != 200:
                return self._rules_failed(result, cursor, listed, now)
            ours = {
                str(r.get("value")): str(r.get("id"))
                for r in base.arr(self._json(listed).get("data"))
                if isinstance(r, dict) and r.get("tag") == self.tag
            }
            stale = [rid for value, rid in ours.items() if value not in wanted]
            if stale:
                answer = post_json(f"{self.api}/rules", {"delete": {"ids": stale}}, headers=headers)
                if answer.status != 200:
                    return self._rules_failed(result, cursor, answer, now)
            missing = [{"value": v, "tag": self.tag} for v in wanted if v not in ours]
            if missing:
                answer = post_json(f"{self.api}/rules", {"add": missing}, headers=headers)
                if answer.status not in (200, 201):
                    return self._rules_failed(result, cursor, answer, now)
                for error in base.arr(self._json(answer).get("errors")):
                    # An invalid or duplicate rule is refused alone; the others are in place.
                    message = f"rule {base.obj(error).get('value')!r}: {base.obj(error).get('title')}"
                    log.warning("X stream source %s: %s", self.source.pk, message)
                    result.errors.append(message[:500])
        except (FetchError, base.BadDocument) as exc:
            self._fail(result, cursor, "rules", str(exc), now, backoff=True)
            return
        self._ok(cursor, {"etag": digest}, now)

    def _json(self, response: Response) -> dict[str, Any]:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise base.BadDocument(f"not JSON ({exc})") from None
        return base.obj(data)

    def _rules_failed(
        self, result: base.PollResult, cursor: SourceCursor, response: Response, now: dt.datetime
    ) -> None:
        if response.status == 429:
            cursor.not_before = now + base.retry_after(response, cursor.failures, now)
            cursor.failures += 1
            cursor.save(update_fields=["not_before", "failures"])
            result.rate_limited += 1
            return
        self._fail(result, cursor, "rules", f"HTTP {response.status} from X rules", now, backoff=True)

    # --- the stream ----------------------------------------------------------------------

    def poll(
        self,
        *,
        now: dt.datetime | None = None,
        max_seconds: float | None = None,
        max_tweets: int | None = None,
    ) -> base.PollResult:
        """Sync the rules, then read the stream for at most `max_seconds` / `max_tweets`
        (the source's `read_seconds` / `max_tweets` by default), storing as it goes."""
        now = now or timezone.now()
        result = base.PollResult(source_id=self.source.pk)
        max_seconds = float(max_seconds or _number(self.config.get("read_seconds"), READ_SECONDS, 1, 240))
        max_tweets = int(max_tweets or _number(self.config.get("max_tweets"), MAX_TWEETS, 1, 100_000))
        cursor, _ = SourceCursor.objects.get_or_create(source=self.source, key="stream")
        if cursor.not_before and cursor.not_before > now:
            result.rate_limited += 1
            return result
        self.sync_rules(result, now)
        params = urlencode(xn.FIELDS)
        try:
            stream = open_stream(
                f"{self.api}?{params}",
                headers=xn.auth_headers(self.source),
                read_timeout=min(STALL_SECONDS, max_seconds + 1),
            )
        except FetchError as exc:
            self._backoff(result, cursor, f"cannot connect: {exc}", now, network_backoff(cursor.failures + 1))
            self._finish(result, now)
            return result
        if stream.status == 429:
            wait = rate_limit_backoff(cursor.failures + 1, stream.header("x-rate-limit-reset"), now)
            result.rate_limited += 1
            self._backoff(result, cursor, f"rate limited: {_problem(stream.body)}", now, wait)
        elif stream.status != 200:
            message = f"HTTP {stream.status} from the X stream: {_problem(stream.body)}"
            self._backoff(result, cursor, message, now, http_backoff(cursor.failures + 1))
        else:
            self._ok(cursor, {}, now)  # connected: the next failure starts its backoff afresh
            try:
                self._read(stream, result, max_seconds, max_tweets)
            finally:
                stream.close()
        self._finish(result, now)
        return result

    def _read(self, stream: Any, result: base.PollResult, max_seconds: float, max_tweets: int) -> None:
        start = self.clock()
        deadline = start + max_seconds
        pending: list[Any] = []
        last_flush = start
        seen = 0

        def flush() -> None:
            nonlocal pending, last_flush
            if pending:
                self.store(result, pending, timezone.now())
            pending, last_flush = [], self.clock()

        try:
            for line in stream.lines():
                line = line.strip()
                if line:
                    item = self._line(line, result)
                    if item is not None:
                        pending.append(item)
                        seen += 1
                now_s = self.clock()
                if len(pending) >= FLUSH_TWEETS or now_s - last_flush >= FLUSH_SECONDS:
                    flush()
                if seen >= max_tweets or now_s >= deadline or self.should_stop():
                    break
        except StreamStalled as exc:
            # The bounded read's own timeout ends a quiet stream at the deadline: not an error.
            if self.clock() < deadline - 0.5:
                result.errors.append(f"stream: {exc}; reconnecting")
                log.warning("X stream source %s: %s", self.source.pk, exc)
        except FetchError as exc:
            result.errors.append(f"stream: {exc}; reconnecting"[:500])
            log.warning("X stream source %s: %s", self.source.pk, exc)
        finally:
            flush()

    def _line(self, line: bytes, result: base.PollResult) -> Any:
        """One streamed object: a tweet (with its own `includes`) or an error notice."""
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            result.bad_items += 1
            log.warning("X stream source %s: a line that is not JSON was skipped", self.source.pk)
            return None
        data = base.obj(data)
        if "data" not in data:
            for error in base.arr(data.get("errors")) or [data]:
                message = f"{base.obj(error).get('title')}: {base.obj(error).get('detail')}"
                result.errors.append(f"stream: {message}"[:500])
                log.warning("X stream source %s: %s", self.source.pk, message)
            return None
        return data

    def normalise(self, item: Any, now: dt.datetime) -> dict[str, Any]:
        return xn.normalise(item.get("data"), now, users=xn.users_by_id(item))

    def _backoff(
        self,
        result: base.PollResult,
        cursor: SourceCursor,
        message: str,
        now: dt.datetime,
        wait: dt.timedelta,
    ) -> None:
        log.error("X stream source %s: %s (retry in %s)", self.source.pk, message, wait)
        result.errors.append(message[:500])
        cursor.failures += 1
        cursor.not_before = now + wait
        cursor.updated_at = now
        cursor.save(update_fields=["failures", "not_before", "updated_at"])


def _number(value: Any, default: float, lo: float, hi: float) -> float:
    try:
        return min(hi, max(lo, float(value)))
    except (TypeError, ValueError):
        return default


def _problem(body: bytes) -> str:
    """X's problem document (`title`, `detail`), or the start of whatever came."""
    try:
        doc = base.obj(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")
    first = base.obj((base.arr(doc.get("errors")) or [doc])[0])
    return f"{first.get('title') or ''} {first.get('detail') or ''}".strip()[:300]


CONTINUOUS_SECONDS = 3600.0  # one connection per hour at most: rules are re-synced on connect


def run_forever(
    source_id: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[base.PollResult], None] = lambda result: None,
) -> None:
    """`rapport listen --stream`: keep the source's stream connected, reconnecting at once
    after a drop and after the cursor's backoff after a failure. A paused or deleted source
    is waited for, not an error."""
    from rapport.listening.models import ListeningSource

    while not should_stop():
        source = ListeningSource.objects.filter(pk=source_id, kind="x_stream", is_active=True).first()
        if source is None:
            sleep(30)
            continue
        waiting = (
            SourceCursor.objects.filter(source=source, key="stream")
            .values_list("not_before", flat=True)
            .first()
        )
        if waiting and waiting > timezone.now():
            sleep(min(30.0, max(0.25, (waiting - timezone.now()).total_seconds())))
            continue
        poller = Poller(source)
        poller.should_stop = should_stop
        report(poller.poll(max_seconds=CONTINUOUS_SECONDS, max_tweets=10**9))
