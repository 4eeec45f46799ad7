"""Alert rules, evaluated right after ingest.

Per mention: a negative mention by an author whose influence is at or above the rule's
threshold; a known customer (a resolved person whose organisation has open or won deals) or a
VIP complaining (negative, or a complaint/churn intent). Per rule: a velocity spike — the
last `window_hours` against the average of the same window over `baseline_days` before it,
for volume or for negative share.

An alert is unique per (rule, key), so seeing the same mention or the same spike twice
raises one alert. Its owner is the account owner (the author's organisation's owner, then
the person's owner) if they are an active agent, else the rule's owner. The owner gets an
email; a rule may also turn the mention into an inbox conversation automatically."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.listening.models import (
    Alert,
    AlertRule,
    AlertState,
    Mention,
    MentionMatch,
    RuleKind,
    VelocityMetric,
)

log = logging.getLogger("rapport.listening")

COMPLAINT_INTENTS = ("complaint", "churn_intent")


def _agent(user: User | None) -> bool:
    from rapport.conversations.routing import BOT_USERNAME

    return bool(user and user.is_active and user.role != Role.READ_ONLY and user.username != BOT_USERNAME)


def alert_owner(mention: Mention | None, rule: AlertRule) -> User | None:
    if mention is not None:
        # A null foreign key reads as None without a query, like the *_id test it replaces.
        if mention.organisation is not None and _agent(mention.organisation.owner):
            return mention.organisation.owner
        if mention.person is not None and _agent(mention.person.owner):
            return mention.person.owner
    return rule.owner if rule.owner.is_active else None


def _matches_scope(rule: AlertRule, mention: Mention) -> bool:
    if rule.query_id is None:
        return True
    return rule.query_id in getattr(mention, "matched_query_ids", ())


def mention_fires(rule: AlertRule, mention: Mention) -> bool:
    if not _matches_scope(rule, mention):
        return False
    if rule.kind == RuleKind.NEGATIVE_INFLUENCE:
        return mention.sentiment == "negative" and mention.influence >= rule.min_influence
    if rule.kind == RuleKind.CUSTOMER_COMPLAINT:
        if not mention.person_id and not mention.organisation_id:
            return False
        complaining = mention.sentiment == "negative" or mention.intent in COMPLAINT_INTENTS
        if not complaining:
            return False
        info = getattr(mention, "author_info", None)
        if info is not None:
            return bool(info.is_vip or info.customer_value > 0)
        return _is_customer_or_vip(mention)
    return False


def _is_customer_or_vip(mention: Mention) -> bool:
    from rapport.sales.models import Deal, DealStatus

    if mention.person is not None and mention.person.is_vip:
        return True
    return bool(
        mention.organisation_id
        and Deal.objects.filter(
            organisation_id=mention.organisation_id, status__in=[DealStatus.OPEN, DealStatus.WON]
        ).exists()
    )


def evaluate_after_ingest(mentions: list[Mention], *, now: dt.datetime | None = None) -> int:
    """Run every active rule over freshly stored mentions; returns alerts raised."""
    now = now or timezone.now()
    rules = list(AlertRule.objects.filter(is_active=True).select_related("owner"))
    if not rules:
        return 0
    raised = 0
    candidates = [m for m in mentions if m.sentiment == "negative" or m.intent in COMPLAINT_INTENTS]
    for rule in rules:
        if rule.kind == RuleKind.VELOCITY:
            raised += int(evaluate_velocity(rule, now=now) is not None)
            continue
        for m in candidates:
            if mention_fires(rule, m):
                alert = raise_alert(
                    rule=rule,
                    key=f"mention:{m.pk}",
                    title=_mention_title(rule, m),
                    detail=m.text[:1000],
                    mentions=[m],
                    owner=alert_owner(m, rule),
                    now=now,
                )
                raised += int(alert is not None)
    return raised


def _mention_title(rule: AlertRule, m: Mention) -> str:
    who = m.author_name or m.author_handle or "someone"
    if rule.kind == RuleKind.CUSTOMER_COMPLAINT:
        return f"Customer complaint from {who} on {m.get_source_kind_display()}"[:300]
    return f"Negative mention by {who} (influence {m.influence:.0f}) on {m.get_source_kind_display()}"[:300]


def _window_counts(rule: AlertRule, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    qs: QuerySet[MentionMatch] | QuerySet[Mention]
    if rule.query_id:
        qs = MentionMatch.objects.filter(
            query_id=rule.query_id, published_at__gte=start, published_at__lt=end
        )
    else:
        qs = Mention.objects.filter(published_at__gte=start, published_at__lt=end)
    total = qs.count()
    negative = qs.filter(sentiment="negative").count() if total else 0
    return total, negative


def evaluate_velocity(rule: AlertRule, *, now: dt.datetime | None = None) -> Alert | None:
    now = now or timezone.now()
    if rule.last_fired_at and rule.last_fired_at > now - dt.timedelta(hours=rule.cooldown_hours):
        return None
    window = dt.timedelta(hours=max(1, rule.window_hours))
    start = now - window
    total, negative = _window_counts(rule, start, now)
    if total < rule.min_count:
        return None
    base_start = start - dt.timedelta(days=max(1, rule.baseline_days))
    base_total, base_negative = _window_counts(rule, base_start, start)
    windows = (start - base_start) / window
    if rule.metric == VelocityMetric.VOLUME:
        baseline = base_total / windows
        if total < rule.factor * max(baseline, 1.0):
            return None
        title = f"Mention volume spike: {total} in {rule.window_hours} h against a usual {baseline:.1f}"
    else:
        share = negative / total
        base_share = base_negative / base_total if base_total else 0.0
        if negative < rule.min_count or share < rule.factor * max(base_share, 0.05):
            return None
        title = f"Negative share spike: {share:.0%} in {rule.window_hours} h against a usual {base_share:.0%}"
    q = Q(published_at__gte=start, published_at__lt=now)
    if rule.query_id:
        q &= Q(matches__query_id=rule.query_id)
    worst = list(
        Mention.objects.filter(q, sentiment="negative")
        .select_related("organisation__owner", "person__owner")
        .order_by("-influence", "-id")[:20]
    )
    bucket = int(now.timestamp() // window.total_seconds())
    alert = raise_alert(
        rule=rule,
        key=f"velocity:{rule.metric}:{bucket}",
        title=f"{rule.name}: {title}"[:300],
        detail="Most influential negative mentions in the window are attached.",
        mentions=worst,
        owner=rule.owner if rule.owner.is_active else None,
        now=now,
        convert=False,
    )
    return alert


def raise_alert(
    *,
    rule: AlertRule,
    key: str,
    title: str,
    detail: str,
    mentions: list[Mention],
    owner: User | None,
    now: dt.datetime,
    convert: bool = True,
) -> Alert | None:
    """Create the alert once; None if this (rule, key) already had one."""
    if Alert.objects.filter(rule=rule, key=key).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule, key=key, title=title, detail=detail, owner=owner, created_at=now
            )
            alert.mentions.set(mentions)
            AlertRule.objects.filter(pk=rule.pk).update(last_fired_at=now)
            rule.last_fired_at = now
    except IntegrityError:
        return None
    if rule.email and owner is not None and owner.email:
        _email(alert, owner, mentions)
    if convert and rule.auto_convert and mentions:
        from rapport.listening.handoff import mention_to_conversation

        for m in mentions[:1]:
            try:
                mention_to_conversation(mention=m, actor=None)
            except Exception:  # the alert stands even if the inbox cannot take it now
                log.exception("listening: automatic conversion of mention %s failed", m.pk)
    return alert


def _email(alert: Alert, owner: User, mentions: list[Mention]) -> None:
    base = getattr(settings, "RAPPORT_BASE_URL", "").rstrip("/")
    lines = [alert.title, "", alert.detail, ""]
    for m in mentions[:5]:
        lines.append(
            f"- {m.author_name or m.author_handle} ({m.sentiment}, influence {m.influence:.0f}): {m.text[:200]}"
        )
        if m.url:
            lines.append(f"  {m.url}")
    lines += ["", f"Open the alert: {base}/listening/alerts/{alert.pk}/"]
    try:
        send_mail(f"[Rapport] {alert.title}"[:200], "\n".join(lines), None, [owner.email])
        Alert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now())
    except Exception:  # mail being down must not stop listening; the in-app alert is there
        log.exception("listening: could not email alert %s to %s", alert.pk, owner.pk)


def alert_set_state(*, actor: User, alert: Alert, state: str) -> Alert:
    from rapport.audit.actions import audit_record
    from rapport.audit.models import AuditEntry
    from rapport.core.errors import ActionError

    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    if state not in AlertState.values:
        raise ActionError("Unknown state.", {"state": [f"Choose one of {', '.join(AlertState.values)}."]})
    now = timezone.now()
    alert.state = state
    if state == AlertState.ACKNOWLEDGED and alert.acknowledged_at is None:
        alert.acknowledged_at = now
    if state == AlertState.RESOLVED:
        alert.resolved_at = now
        alert.acknowledged_at = alert.acknowledged_at or now
    if state == AlertState.OPEN:
        alert.resolved_at = None
    if alert.owner_id is None:
        alert.owner = actor
    alert.save()
    audit_record(actor=actor, obj=alert, action=AuditEntry.Action.UPDATE, summary=f"alert → {state}")
    return alert
