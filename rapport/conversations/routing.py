"""Routing rules and SLA clocks.

On each inbound message the active rules run in order. Assignment actions only apply to a
conversation nobody holds yet (a follow-up never takes a conversation away from its agent);
priority only ever goes up; the auto-reply only answers the first message of a conversation.
When no rule assigned it, a new conversation goes to the account owner (the person's owner,
else their organisation's), else stays unassigned in its channel's team."""

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from rapport.accounts.models import SERVICE_USERNAME, Role, User
from rapport.conversations.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    AssignMode,
    BusinessHours,
    Conversation,
    Priority,
    RoutingRule,
    SlaPolicy,
    SlaState,
)
from rapport.conversations.notify import notify, team_managers
from rapport.conversations.scoring import Score
from rapport.core.text import fold

BOT_USERNAME = SERVICE_USERNAME

# (first response, resolution) in minutes when no SlaPolicy row exists for a priority. Keyed
# by str: it is looked up with the plain values stored on rows and policies.
DEFAULT_SLA: dict[str, tuple[int, int]] = {
    Priority.URGENT: (30, 4 * 60),
    Priority.HIGH: (60, 8 * 60),
    Priority.NORMAL: (4 * 60, 24 * 60),
    Priority.LOW: (24 * 60, 72 * 60),
}
DEFAULT_WARN_MINUTES = 15


def is_agent(user: User | None) -> bool:
    return bool(user and user.is_active and user.role != Role.READ_ONLY and user.username != BOT_USERNAME)


def account_owner(conversation: Conversation) -> User | None:
    person = conversation.person
    if person is not None and is_agent(person.owner):
        return person.owner
    org = conversation.organisation or (person.organisation if person else None)
    if org is not None and is_agent(org.owner):
        return org.owner
    return None


def in_business_hours(when: dt.datetime) -> bool:
    start, end, weekdays = getattr(settings, "RAPPORT_BUSINESS_HOURS", (9, 18, (0, 1, 2, 3, 4)))
    local = timezone.localtime(when)
    return local.weekday() in weekdays and start <= local.hour < end


@dataclass
class RouteResult:
    matched: list[int] = field(default_factory=list)  # rule ids
    assigned: User | None = None
    auto_reply: str = ""
    escalated: bool = False


def _names(values: object) -> set[str]:
    return {fold(str(v)) for v in values} if isinstance(values, list) else set()


def _rule_words(rule: RoutingRule) -> set[str]:
    # Folded once per loaded rule (a batch loads the rules once and matches every message).
    cached = rule.__dict__.get("_folded_words")
    if cached is None or cached[0] is not rule.words:
        cached = rule.__dict__["_folded_words"] = (rule.words, _names(rule.words))
    return cached[1]


@functools.lru_cache(maxsize=64)
def _folded(text: str) -> tuple[str, frozenset[str]]:
    # Every rule with words folds the same message text: once per message, not per rule.
    folded = fold(text)
    return folded, frozenset(folded.split())


def rule_matches(
    rule: RoutingRule,
    *,
    conversation: Conversation,
    channel_kind: str,
    text: str,
    score: Score,
    now: dt.datetime,
) -> bool:
    if rule.channel_kinds and channel_kind not in rule.channel_kinds:
        return False
    if rule.words:
        folded, words = _folded(text)
        if not any((w in words) if " " not in w else (w in folded) for w in _rule_words(rule)):
            return False
    if rule.sentiments and score.sentiment not in rule.sentiments:
        return False
    if rule.urgencies and score.urgency not in rule.urgencies:
        return False
    if rule.business_hours == BusinessHours.INSIDE and not in_business_hours(now):
        return False
    if rule.business_hours == BusinessHours.OUTSIDE and in_business_hours(now):
        return False
    person, org = conversation.person, conversation.organisation
    if rule.person_vip is not None and (person is None or person.is_vip != rule.person_vip):
        return False
    person_tags = (
        _names([t.name for t in person.tags.all()]) if person is not None and rule.person_tags else set()
    )
    if rule.person_tags and not _names(rule.person_tags) & person_tags:
        return False
    org_tags = (
        _names([t.name for t in org.tags.all()]) if org is not None and rule.organisation_tags else set()
    )
    if rule.organisation_tags and not _names(rule.organisation_tags) & org_tags:
        return False
    return not (rule.organisation_owner_id and (org is None or org.owner_id != rule.organisation_owner_id))


def _team_members(team_id: int) -> list[User]:
    return [
        u
        for u in User.objects.filter(teams__id=team_id, is_active=True)
        .exclude(role=Role.READ_ONLY)
        .order_by("id")
        if is_agent(u)
    ]


def pick_round_robin(rule: RoutingRule) -> User | None:
    # Lock the rule so two messages routed at once do not both pick the same next person.
    locked = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    members = _team_members(locked.assign_team_id) if locked.assign_team_id else []
    if not members:
        return None
    after = [u for u in members if locked.rr_last_user_id is not None and u.pk > locked.rr_last_user_id]
    chosen = after[0] if after else members[0]
    RoutingRule.objects.filter(pk=rule.pk).update(rr_last_user=chosen)
    rule.rr_last_user = chosen
    return chosen


def pick_fewest_open(team_id: int | None) -> User | None:
    members = _team_members(team_id) if team_id else []
    if not members:
        return None
    counts = dict(
        Conversation.objects.filter(assignee__in=members, status__in=OPEN_STATUSES)
        .values_list("assignee")
        .annotate(n=Count("id"))
    )
    return min(members, key=lambda u: (counts.get(u.pk, 0), u.pk))


def _assignee_for(rule: RoutingRule, conversation: Conversation, context: "RouteContext") -> User | None:
    if rule.assign_mode == AssignMode.USER:
        return rule.assign_user if is_agent(rule.assign_user) else None
    if rule.assign_mode == AssignMode.ACCOUNT_OWNER:
        return account_owner(conversation)
    if rule.assign_mode == AssignMode.ROUND_ROBIN:
        return pick_round_robin(rule)
    if rule.assign_mode == AssignMode.FEWEST_OPEN:
        return context.fewest_open(rule.assign_team_id)
    return None


class RouteContext:
    """What routing reads and writes besides the conversation itself. This default goes to
    the database on every call; the ingest pipeline passes a `BatchRouting` that answers from
    memory for a whole batch of messages and writes once at its end."""

    def fewest_open(self, team_id: int | None) -> User | None:
        return pick_fewest_open(team_id)

    def add_tags(self, conversation: Conversation, names: list[str]) -> None:
        from rapport.people.actions import tags_set

        existing = list(conversation.tags.values_list("name", flat=True))
        if {t.strip().lower() for t in names} - {t.lower() for t in existing}:
            # tags_set only uses obj.tags, but people/actions.py annotates it for Person and
            # Organisation; a Conversation has the same Tag relation.
            tags_set(obj=conversation, names=[*existing, *names])


class BatchRouting(RouteContext):
    """Routing for a batch of messages stored in one transaction: team members, open
    conversation counts and conversation tags are read once per batch, and tags added by
    rules are inserted together by `flush()`.

    "Fewest open" counts what the database holds (read once per team) plus what this batch
    has changed since: `track()` is told each conversation's contribution (its assignee while
    it is open) as the batch first saw it and after each message, so the counts are exact
    without writing conversations to the database mid-batch."""

    def __init__(self) -> None:
        self.members: dict[int, list[User]] = {}
        self.counts: dict[int, int] = {}  # assignee id → open conversations in the database
        self.delta: dict[int, int] = {}  # assignee id → change made by this batch
        self.held: dict[int, int | None] = {}  # conversation id → assignee it counts for now
        self.tag_names: dict[int, list[str]] = {}  # conversation id → its tags' names
        self.tag_ids: dict[int, set[int]] = {}
        self.tags: dict[str, Any] = {}  # name → Tag, as tags_set finds or creates it
        self.new_links: list[Any] = []
        self.known_new: set[int] = set()  # conversations created by the batch (no tags yet)
        self.loaded: set[int] = set()  # conversations the batch read: tags read together

    @staticmethod
    def holder(conversation: Conversation) -> int | None:
        return conversation.assignee_id if conversation.status in OPEN_STATUSES else None

    def seen(self, conversation: Conversation, *, new: bool = False) -> None:
        """Note a conversation as the batch first sees it, before changing it: this is what
        the database holds for it until the batch is written."""
        if conversation.pk not in self.held:
            self.held[conversation.pk] = self.holder(conversation)
            if new:
                self.known_new.add(conversation.pk)

    def track(self, conversation: Conversation) -> None:
        """Account for a change to a conversation `seen` before (status or assignee)."""
        before, now = self.held.get(conversation.pk), self.holder(conversation)
        if before != now:
            if before is not None:
                self.delta[before] = self.delta.get(before, 0) - 1
            if now is not None:
                self.delta[now] = self.delta.get(now, 0) + 1
            self.held[conversation.pk] = now

    def fewest_open(self, team_id: int | None) -> User | None:
        if not team_id:
            return None
        if team_id not in self.members:
            self.members[team_id] = _team_members(team_id)
            todo = [u.pk for u in self.members[team_id] if u.pk not in self.counts]
            if todo:
                self.counts.update(dict.fromkeys(todo, 0))
                self.counts.update(
                    Conversation.objects.filter(assignee__in=todo, status__in=OPEN_STATUSES)
                    .values_list("assignee")
                    .annotate(n=Count("id"))
                )
        members = self.members[team_id]
        if not members:
            return None
        return min(members, key=lambda u: (self.counts[u.pk] + self.delta.get(u.pk, 0), u.pk))

    def _existing_tags(self, conversation: Conversation) -> list[str]:
        if conversation.pk not in self.tag_names:
            todo = ({conversation.pk} | self.loaded) - self.tag_names.keys() - self.known_new
            for pk in todo | {conversation.pk}:
                self.tag_names[pk], self.tag_ids[pk] = [], set()
            if todo:
                for pk, tag_id, name in Conversation.tags.through.objects.filter(
                    conversation_id__in=todo
                ).values_list("conversation_id", "tag_id", "tag__name"):
                    self.tag_names[pk].append(name)
                    self.tag_ids[pk].add(tag_id)
        return self.tag_names[conversation.pk]

    def add_tags(self, conversation: Conversation, names: list[str]) -> None:
        from rapport.people.models import Tag

        existing = self._existing_tags(conversation)
        have = {t.lower() for t in existing}
        if not {t.strip().lower() for t in names} - have:
            return
        # As tags_set: names cleaned, each found case-insensitively or created; the tags the
        # conversation has stay.
        for name in dict.fromkeys(n.strip()[:60] for n in names if n and n.strip()):
            if name.lower() in have:
                continue
            tag = self.tags.get(name)
            if tag is None:
                tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
                self.tags[name] = tag
            have.add(name.lower())
            if tag.pk not in self.tag_ids[conversation.pk]:
                self.tag_ids[conversation.pk].add(tag.pk)
                existing.append(tag.name)
                self.new_links.append(
                    Conversation.tags.through(conversation_id=conversation.pk, tag_id=tag.pk)
                )

    def flush(self) -> None:
        if self.new_links:
            Conversation.tags.through.objects.bulk_create(self.new_links)
            self.new_links = []


def active_rules() -> list[RoutingRule]:
    return list(RoutingRule.objects.filter(is_active=True).select_related("assign_user"))


def route(
    *,
    conversation: Conversation,
    channel_kind: str,
    text: str,
    score: Score,
    is_new: bool,
    now: dt.datetime | None = None,
    rules: list[RoutingRule] | None = None,
    context: RouteContext | None = None,
) -> RouteResult:
    """Apply the rules to `conversation` (saved by the caller) after an inbound message.
    `rules` lets a batch load the active rules once (see active_rules) instead of per message,
    and `context` (a BatchRouting) answers team and tag lookups from the batch's memory."""
    context = context or RouteContext()
    now = now or timezone.now()
    result = RouteResult()
    tags_to_add: list[str] = []
    for rule in active_rules() if rules is None else rules:
        if not rule_matches(
            rule, conversation=conversation, channel_kind=channel_kind, text=text, score=score, now=now
        ):
            continue
        result.matched.append(rule.pk)
        if conversation.assignee_id is None and rule.assign_mode:
            if rule.assign_team_id and rule.assign_mode in (AssignMode.ROUND_ROBIN, AssignMode.FEWEST_OPEN):
                conversation.team_id = rule.assign_team_id
            chosen = _assignee_for(rule, conversation, context)
            if chosen is not None:
                conversation.assignee = chosen
                result.assigned = chosen
        if rule.set_priority and PRIORITY_RANK[rule.set_priority] > PRIORITY_RANK[conversation.priority]:
            conversation.priority = rule.set_priority
        tags_to_add += (
            [str(t)[:60] for t in rule.add_tags if str(t).strip()] if isinstance(rule.add_tags, list) else []
        )
        if is_new and rule.auto_reply and not result.auto_reply:
            result.auto_reply = rule.auto_reply
        if rule.escalate:
            result.escalated = True
        if rule.stop:
            break
    if is_new and conversation.assignee_id is None:
        owner = account_owner(conversation)
        if owner is not None:
            conversation.assignee = owner
            result.assigned = owner
    if result.escalated and conversation.escalated_at is None:
        escalate(conversation, now=now, reason="a routing rule")
    if tags_to_add:
        context.add_tags(conversation, tags_to_add)
    return result


def escalate(conversation: Conversation, *, now: dt.datetime, reason: str) -> None:
    conversation.escalated_at = now
    if PRIORITY_RANK[conversation.priority] < PRIORITY_RANK[Priority.URGENT]:
        conversation.priority = Priority.URGENT
    notify(
        users=[conversation.assignee, *team_managers(conversation.team_id)],
        kind="escalated",
        text=f"Escalated by {reason}: {conversation.subject or 'conversation'}"[:300],
        conversation=conversation,
    )


# --- SLA -------------------------------------------------------------------------------


SlaTable = dict[str, tuple[int, int, int]]


def sla_table() -> SlaTable:
    """Minutes (first response, resolution, warning) for every priority, read once; a batch
    of messages uses one table rather than one query per message."""
    table: SlaTable = {
        p: (*DEFAULT_SLA.get(p, DEFAULT_SLA[Priority.NORMAL]), DEFAULT_WARN_MINUTES) for p in Priority.values
    }
    for policy in SlaPolicy.objects.all():
        table[policy.priority] = (
            policy.first_response_minutes,
            policy.resolution_minutes,
            policy.warn_before_minutes,
        )
    return table


def sla_minutes(priority: str, table: SlaTable | None = None) -> tuple[int, int, int]:
    if table is not None:
        return table.get(priority) or table[Priority.NORMAL]
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is not None:
        return policy.first_response_minutes, policy.resolution_minutes, policy.warn_before_minutes
    first, resolution = DEFAULT_SLA.get(priority, DEFAULT_SLA[Priority.NORMAL])
    return first, resolution, DEFAULT_WARN_MINUTES


def apply_sla(conversation: Conversation, table: SlaTable | None = None) -> None:
    """Deadlines count from the conversation's start; a priority change moves them."""
    first, resolution, _ = sla_minutes(conversation.priority, table)
    start = conversation.created_at
    conversation.sla_first_response_due = (
        start + dt.timedelta(minutes=first) if conversation.first_response_at is None else None
    )
    conversation.sla_resolution_due = start + dt.timedelta(minutes=resolution)
    if conversation.sla_state == SlaState.NONE:
        conversation.sla_state = SlaState.OK


def sla_state_at(conversation: Conversation, now: dt.datetime, table: SlaTable | None = None) -> str:
    if not conversation.is_open:
        return conversation.sla_state
    _, _, warn = sla_minutes(conversation.priority, table)
    dues = []
    if conversation.first_response_at is None and conversation.sla_first_response_due:
        dues.append(conversation.sla_first_response_due)
    if conversation.sla_resolution_due:
        dues.append(conversation.sla_resolution_due)
    if not dues:
        return SlaState.NONE
    due = min(dues)
    if now >= due:
        return SlaState.BREACHED
    if now >= due - dt.timedelta(minutes=warn):
        return SlaState.AT_RISK
    return SlaState.OK


def sla_check(*, now: dt.datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Move open conversations between ok / at risk / breached; warn on at-risk, escalate on
    breach (once). Safe to run as often as you like: only state changes act."""
    from django.db import transaction

    now = now or timezone.now()
    counts = {"checked": 0, "at_risk": 0, "breached": 0}
    table = sla_table()
    last_id = 0
    while True:
        rows = list(
            Conversation.objects.filter(status__in=OPEN_STATUSES, pk__gt=last_id)
            .exclude(sla_state=SlaState.NONE)
            .select_related("assignee")
            .order_by("pk")[:batch]
        )
        if not rows:
            return counts
        last_id = rows[-1].pk
        for conv in rows:
            counts["checked"] += 1
            state = sla_state_at(conv, now, table)
            if state == conv.sla_state:
                continue
            with transaction.atomic():
                if state == SlaState.AT_RISK:
                    counts["at_risk"] += 1
                    notify(
                        users=[conv.assignee, *([] if conv.assignee else team_managers(conv.team_id))],
                        kind="sla_at_risk",
                        text=f"SLA at risk: {conv.subject or 'conversation'}",
                        conversation=conv,
                    )
                elif state == SlaState.BREACHED:
                    counts["breached"] += 1
                    if conv.escalated_at is None:
                        escalate(conv, now=now, reason="SLA breach")
                conv.sla_state = state
                Conversation.objects.filter(pk=conv.pk).update(
                    sla_state=state, escalated_at=conv.escalated_at, priority=conv.priority
                )
