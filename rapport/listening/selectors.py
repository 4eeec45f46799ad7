"""Reads for listening, scoped by who asks.

- Mentions: public posts, shared with every signed-in, active user of the organisation.
- Queries and alert rules: owned records (`rapport.core.access.visible`).
- Alerts: visible to their owner, to anyone who can see their rule, and to admins."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from rapport.accounts.models import User
from rapport.core.access import get_visible, visibility_q, visible
from rapport.core.errors import ActionError
from rapport.core.pagination import Page, keyset_page
from rapport.listening.models import (
    Alert,
    AlertRule,
    AlertState,
    ListeningQuery,
    Mention,
    MentionMatch,
    MentionState,
    Sentiment,
    SourceKind,
)

INTENTS = ("complaint", "question", "purchase_intent", "churn_intent", "praise", "other")


def mentions_visible(user: User) -> QuerySet[Mention]:
    if not user.is_authenticated or not user.is_active:
        return Mention.objects.none()
    return Mention.objects.all()


def mention_get(user: User, mention_id: Any) -> Mention:
    try:
        return (
            mentions_visible(user)
            .select_related("person", "organisation", "owner", "source")
            .get(pk=int(mention_id))
        )
    except (Mention.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")


def queries_visible(user: User) -> QuerySet[ListeningQuery]:
    return visible(ListeningQuery, user).select_related("owner", "team")


def query_get(user: User, query_id: Any) -> ListeningQuery:
    return get_visible(ListeningQuery, user, query_id, queries_visible(user))


def rules_visible(user: User) -> QuerySet[AlertRule]:
    return visible(AlertRule, user).select_related("owner", "team", "query")


def alerts_visible(user: User) -> QuerySet[Alert]:
    if not user.is_authenticated or not user.is_active:
        return Alert.objects.none()
    qs = Alert.objects.select_related("rule", "owner")
    if user.is_admin:
        return qs
    return qs.filter(Q(owner=user) | visibility_q(user, "rule__"))


def alert_get(user: User, alert_id: Any) -> Alert:
    try:
        return alerts_visible(user).get(pk=int(alert_id))
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")


@dataclass
class MentionFilters:
    query: int | None = None
    source: str = ""
    sentiment: str = ""
    intent: str = ""
    state: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    author: str = ""
    person: int | None = None

    @classmethod
    def parse(cls, params: Any) -> MentionFilters:
        """From GET parameters or an API schema; unknown values are errors, not ignored."""
        get = params.get if hasattr(params, "get") else lambda k, d=None: getattr(params, k, d)
        f = cls()
        errors: dict[str, list[str]] = {}
        raw_query = get("query") or None
        if raw_query not in (None, ""):
            try:
                f.query = int(raw_query)
            except (TypeError, ValueError):
                errors["query"] = ["Unknown query."]
        for name, allowed in (
            ("source", SourceKind.values),
            ("sentiment", Sentiment.values),
            ("intent", INTENTS),
            ("state", MentionState.values),
        ):
            value = (get(name) or "").strip()
            if value and value not in allowed:
                errors[name] = [f"Choose one of {', '.join(allowed)}."]
            setattr(f, name, value)
        for name in ("since", "until"):
            value = get(name)
            if value in (None, ""):
                continue
            if isinstance(value, dt.date):
                setattr(f, name, value)
                continue
            try:
                setattr(f, name, dt.date.fromisoformat(str(value)))
            except ValueError:
                errors[name] = ["Use a date like 2025-01-31."]
        f.author = (get("author") or "").strip()[:320]
        raw_person = get("person")
        if raw_person not in (None, ""):
            try:
                f.person = int(raw_person)
            except (TypeError, ValueError):
                errors["person"] = ["Unknown person."]
        if errors:
            raise ActionError("Some filters are not valid.", errors)
        return f

    def as_params(self) -> dict[str, str]:
        out = {}
        for name in ("query", "source", "sentiment", "intent", "state", "since", "until", "author", "person"):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = str(value)
        return out


def _bounds(day: dt.date, end: bool = False) -> dt.datetime:
    when = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time.min)
    return timezone.make_aware(when)


def mention_filter(user: User, f: MentionFilters) -> QuerySet[Mention]:
    qs = mentions_visible(user)
    if f.query is not None:
        # Only queries the user may see can be used to slice; others behave as unknown.
        if not queries_visible(user).filter(pk=f.query).exists():
            raise ActionError("Some filters are not valid.", {"query": ["Unknown query."]})
        qs = qs.filter(matches__query_id=f.query)
    for name in ("source", "sentiment", "intent", "state"):
        value = getattr(f, name)
        if value:
            qs = qs.filter(**{"source_kind" if name == "source" else name: value})
    if f.since:
        qs = qs.filter(published_at__gte=_bounds(f.since))
    if f.until:
        qs = qs.filter(published_at__lt=_bounds(f.until, end=True))
    if f.author:
        qs = qs.filter(author_handle=f.author)
    if f.person:
        qs = qs.filter(person_id=f.person)
    return qs


def mention_list(user: User, f: MentionFilters, *, cursor: str | None, limit: int = 50) -> Page[Mention]:
    if f.query is not None:
        return _mention_list_by_query(user, f, f.query, cursor=cursor, limit=limit)
    qs = mention_filter(user, f).select_related("person", "organisation")
    return keyset_page(qs, ["-published_at", "-id"], cursor, limit)


def _mention_list_by_query(
    user: User, f: MentionFilters, query_id: int, *, cursor: str | None, limit: int
) -> Page[Mention]:
    """One query's mentions, paged on MentionMatch's own (query, published_at, mention)
    index: ordering mentions through the join would sort every match of a busy query.
    The cursor is the same (published_at, id) pair as the plain list's."""
    if not queries_visible(user).filter(pk=query_id).exists():
        raise ActionError("Some filters are not valid.", {"query": ["Unknown query."]})
    matches = MentionMatch.objects.filter(query_id=query_id)
    if f.sentiment:
        matches = matches.filter(sentiment=f.sentiment)
    if f.since:
        matches = matches.filter(published_at__gte=_bounds(f.since))
    if f.until:
        matches = matches.filter(published_at__lt=_bounds(f.until, end=True))
    for name, column in (
        ("source", "source_kind"),
        ("intent", "intent"),
        ("state", "state"),
        ("author", "author_handle"),
    ):
        value = getattr(f, name)
        if value:
            matches = matches.filter(**{f"mention__{column}": value})
    if f.person:
        matches = matches.filter(mention__person_id=f.person)
    page = keyset_page(matches, ["-published_at", "-mention_id"], cursor, limit)
    ids = [m.mention_id for m in page.items]
    by_id = Mention.objects.select_related("person", "organisation").in_bulk(ids)
    return Page(items=[by_id[i] for i in ids if i in by_id], next_cursor=page.next_cursor)


def open_alert_count(user: User) -> int:
    return alerts_visible(user).filter(state=AlertState.OPEN).count()
