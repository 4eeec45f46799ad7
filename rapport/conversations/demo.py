"""A living inbox for the demo organisation: channels of every kind and a few hundred
conversations over the last two weeks.

Customer messages go through the real pipeline (`ingest`: identity, threading, sentiment,
routing rules, SLA deadlines), back-dated, so priorities, assignments and scores are the
pipeline's own. What an agent would have done afterwards (replies, calls, resolving) is
written directly, and the SLA check runs last, so some conversations are at risk or breached
exactly as they would be. The same seed gives the same conversations; running it again adds
nothing."""

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.accounts.models import Team, User
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.models import Channel, ChannelKind, ChannelStatus
from rapport.conversations import routing
from rapport.conversations.ingest import ingest
from rapport.conversations.models import (
    Call,
    CallDirection,
    CallOutcome,
    Conversation,
    Delivery,
    Direction,
    Message,
    Priority,
    RoutingRule,
    Status,
)
from rapport.people.identities import IdentityError, normalise
from rapport.people.models import Identity, IdentityKind, Person, Source

# kind, name, team, identity kind, weight (share of conversations that start there)
CHANNELS = [
    (ChannelKind.EMAIL, "Support email", "North", IdentityKind.EMAIL, 30),
    (ChannelKind.CHAT, "Website chat", "North", IdentityKind.EMAIL, 18),
    (ChannelKind.X, "X @rapport_demo", "South", IdentityKind.X, 12),
    (ChannelKind.MASTODON, "Mastodon @rapport@social.example", "South", IdentityKind.MASTODON, 8),
    (ChannelKind.FACEBOOK, "Facebook page", "South", IdentityKind.FACEBOOK, 10),
    (ChannelKind.SMS, "SMS +44 7700 900123", "North", IdentityKind.PHONE, 12),
    (ChannelKind.PHONE, "Phone line", "North", IdentityKind.PHONE, 10),
]
AGENTS = ("maria", "sam", "sven", "mona")

# subject, opening message, follow-up from the customer
ANGRY = [
    (
        "Order arrived broken",
        "My order {order} arrived with a cracked screen. This is the second time! Unacceptable.",
        "Still no answer after two days. I want a refund immediately or I cancel everything.",
    ),
    (
        "Charged twice",
        "You charged my card twice for invoice {order}. Fix this now, I am furious.",
        "Nobody has called me back. This is terrible service, I am switching to your competitor.",
    ),
    (
        "Service down again",
        "Your platform has been down all morning and my whole team cannot work. Urgent!",
        "Two hours later and still down. We pay for premium support, this is a disaster.",
    ),
    (
        "Cancel my subscription",
        "I have asked three times to cancel my subscription. Stop charging me.",
        "If this is not cancelled today I will report you. Worst experience ever.",
    ),
]
QUESTIONS = [
    (
        "Delivery date for order {order}",
        "Hello, could you tell me when order {order} will be delivered?",
        "Thanks. Could you also send the tracking link?",
    ),
    (
        "Price for 50 seats",
        "Hi, what would the premium plan cost for 50 seats? We are comparing offers this week.",
        "And is there a discount if we pay yearly?",
    ),
    (
        "Change delivery address",
        "Can I still change the delivery address for order {order}? We moved offices.",
        "The new address is 12 Harbour Street. Thank you!",
    ),
    (
        "Invoice copy",
        "Could you send me a copy of invoice {order}? Our accounting needs it.",
        "Got it, thanks. One more: can the VAT number be added?",
    ),
    (
        "Do you ship to Norway?",
        "Do you ship to Norway, and how long does it take?",
        "Perfect, I will place the order tomorrow.",
    ),
]
HAPPY = [
    (
        "Thank you!",
        "The replacement arrived and works perfectly. Great support, thank you!",
        "I recommended you to two colleagues already.",
    ),
    (
        "Great onboarding",
        "Just wanted to say the onboarding call was excellent. The team loves the product.",
        "Looking forward to the next training session.",
    ),
]
REPLIES = [
    "Thanks for reaching out. I am looking into it right now and will get back to you today.",
    "Sorry about this. I have arranged a replacement; you will get the tracking link shortly.",
    "Here is the information you asked for. Let me know if anything else is unclear.",
    "I have refunded the duplicate charge; it will show on your statement in 3–5 days.",
]


@dataclass
class _Plan:
    index: int
    kind: str
    mood: str  # angry | question | happy
    topic: tuple[str, str, str]
    start: dt.datetime
    hop: bool  # public X mention → X DM → phone call
    outcome: str  # resolved | waiting | open | untouched
    vip: bool


def _channels() -> dict[str, Channel]:
    teams = {name: Team.objects.get_or_create(name=name)[0] for name in ("North", "South")}
    channels: dict[str, Channel] = {}
    for kind, name, team, _, _ in CHANNELS:
        channel = Channel.objects.filter(kind=kind, name=name).first()
        if channel is None:
            channel = Channel.objects.create(
                kind=kind, name=name, team=teams[team], status=ChannelStatus.ACTIVE, settings={"demo": True}
            )
        channels[kind] = channel
    return channels


def _rules() -> None:
    if not RoutingRule.objects.filter(name="Unhappy customers").exists():
        RoutingRule.objects.create(
            name="Unhappy customers",
            position=10,
            stop=False,
            sentiments=["negative"],
            set_priority=Priority.HIGH,
            add_tags=["unhappy"],
        )
    if not RoutingRule.objects.filter(name="VIP customers").exists():
        RoutingRule.objects.create(
            name="VIP customers",
            position=20,
            stop=False,
            person_vip=True,
            set_priority=Priority.URGENT,
            add_tags=["vip"],
            escalate=True,
        )


def _handle(person: Person, kind: str) -> str:
    base = "".join(
        ch for ch in (person.first_name + person.last_name).lower() if ch.isascii() and ch.isalnum()
    )
    base = (base or "customer")[:9]
    if kind == IdentityKind.X:
        return f"{base}{person.pk % 100000}"[:15]
    if kind == IdentityKind.MASTODON:
        return f"@{base}{person.pk}@social.example"
    if kind == IdentityKind.FACEBOOK:
        return f"{base}.{person.pk}"
    if kind == IdentityKind.PHONE:
        return f"+447700900{person.pk % 1000:03d}"
    return f"{base}.{person.pk}@mail.example"


def _identity(person: Person, kind: str) -> str | None:
    """The person's identity of this kind, added if they have none (the demo's customers
    have found the company on every channel)."""
    found = Identity.objects.filter(person=person, kind=kind).order_by("id").first()
    if found is not None:
        return found.value
    try:
        value = normalise(kind, _handle(person, kind))
    except IdentityError:
        return None
    if Identity.objects.filter(kind=kind, value=value).exists():
        return None  # someone else's already: do not make the demo merge two people
    Identity.objects.create(person=person, kind=kind, value=value, is_primary=False)
    return value


def _plans(conversations: int, seed: int, now: dt.datetime) -> list[_Plan]:
    rng = random.Random(seed)
    kinds = [c[0] for c in CHANNELS]
    weights = [c[4] for c in CHANNELS]
    plans = []
    for i in range(conversations):
        roll = rng.random()
        mood = "angry" if roll < 0.18 else "happy" if roll > 0.85 else "question"
        topic = rng.choice(ANGRY if mood == "angry" else HAPPY if mood == "happy" else QUESTIONS)
        hop = i % 12 == 5
        kind = ChannelKind.X if hop else rng.choices(kinds, weights)[0]
        age = dt.timedelta(minutes=rng.randrange(20, 14 * 24 * 60))
        # Older conversations are mostly done; the recent ones are where the work is. The few
        # old ones still open are the SLA breaches.
        if age > dt.timedelta(hours=48):
            weights_by_age = [90, 7, 3, 0]
        elif age > dt.timedelta(hours=4):
            weights_by_age = [35, 25, 25, 15]
        else:
            weights_by_age = [0, 0, 40, 60]
        outcome = rng.choices(["resolved", "waiting", "open", "untouched"], weights_by_age)[0]
        plans.append(_Plan(i, kind, mood, topic, now - age, hop, outcome, vip=mood == "angry" and i % 7 == 0))
    return plans


def _outbound(
    conv: Conversation, channel: Channel, agent: User | None, text: str, when: dt.datetime, ext: str
) -> None:
    Message.objects.create(
        conversation=conv,
        direction=Direction.OUTBOUND,
        channel=channel,
        external_id=ext,
        author_user=agent,
        text=text,
        sent_at=when,
        received_at=when,
        delivery_status=Delivery.SENT,
    )


def seed_inbox(*, conversations: int = 300, seed: int = 1) -> dict[str, Any]:
    """Seed the demo inbox. Returns counts; a second run with the same seed adds nothing."""
    from rapport.bench.seed import ensure_demo_users

    marker = f"demo-{seed}-"
    if Message.objects.filter(external_id__startswith=marker).exists():
        return {"created": 0, "conversations": Conversation.objects.count(), "already_seeded": True}
    users = ensure_demo_users()
    agents = [users[name] for name in AGENTS if name in users]
    channels = _channels()
    _rules()
    now = timezone.now()
    plans = _plans(conversations, seed, now)
    rng = random.Random(seed + 1)
    # The CRM's own people (not those the inbox created), so the same seed picks the same ones.
    people = list(
        Person.objects.filter(merged_into__isnull=True)
        .exclude(source=Source.INBOX)
        .order_by("id")
        .values_list("id", flat=True)
    )
    chosen = rng.sample(people, min(len(people), conversations))
    phone = channels[ChannelKind.PHONE]
    created = calls = 0
    for plan in sorted(plans, key=lambda p: p.start):
        with transaction.atomic():
            created += 1
            calls += _one(plan, chosen, channels, phone, agents, rng, marker, now)
    report = routing.sla_check(now=now)
    return {
        "created": created,
        "calls": calls,
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.filter(conversation__in=Conversation.objects.all()).count(),
        "sla": report,
        "already_seeded": False,
    }


def _one(
    plan: _Plan,
    chosen: list[int],
    channels: dict[str, Channel],
    phone: Channel,
    agents: list[User],
    rng: random.Random,
    marker: str,
    now: dt.datetime,
) -> int:
    identity_kinds: dict[str, str] = {c[0]: c[3] for c in CHANNELS}
    identity_kind = identity_kinds[plan.kind]
    channel = channels[plan.kind]
    person = Person.objects.filter(pk=chosen[plan.index]).first() if plan.index < len(chosen) else None
    order = 4400 + plan.index
    subject, first, follow = (part.format(order=order) for part in plan.topic)
    if person is not None:
        if plan.vip and not person.is_vip:
            Person.objects.filter(pk=person.pk).update(is_vip=True)
        value = _identity(person, identity_kind)
        name = f"{person.first_name} {person.last_name}".strip()
    else:
        value = None
        name = ""
    if value is None:
        # No seeded person (or no usable identity): an unknown visitor writes by email, and the
        # pipeline files them as a new person to review.
        identity_kind, value = IdentityKind.EMAIL, f"visitor{plan.index}@mail.example"
        if plan.kind not in (ChannelKind.EMAIL, ChannelKind.CHAT):
            channel = channels[ChannelKind.EMAIL]
    if plan.kind == ChannelKind.PHONE:
        first = f"Voicemail: {first}"
    ext = f"{marker}{plan.index}"
    t = plan.start
    if plan.hop:
        text = f"@rapport_demo {first}"
        conv = _ingest(channel, ext + "-mention", identity_kind, value, name, text, "", t, public=True)
        t += dt.timedelta(minutes=rng.randrange(5, 40))
        _outbound(
            conv, channel, _agent(conv, agents, plan), "Sorry to hear that! Sending you a DM.", t, ext + "-r0"
        )
        t += dt.timedelta(minutes=rng.randrange(2, 30))
        conv = _ingest(
            channel, ext + "-dm", identity_kind, value, name, follow, "", t, thread=f"dm-{plan.index}"
        )
    else:
        conv = _ingest(channel, ext, identity_kind, value, name, first, subject, t)
        if plan.outcome != "untouched" or rng.random() < 0.5:
            t += dt.timedelta(minutes=rng.randrange(30, 600))
            if t < now:
                conv = _ingest(channel, ext + "-2", identity_kind, value, name, follow, "", t)
    agent = _agent(conv, agents, plan)
    made_call = 0
    if plan.outcome == "untouched" and not plan.hop:
        return 0
    t += dt.timedelta(minutes=rng.randrange(10, 240))
    if t > now:
        t = now - dt.timedelta(minutes=1)
    if plan.hop or plan.kind == ChannelKind.PHONE:
        made_call = _call(conv, phone, agent, value if identity_kind == IdentityKind.PHONE else "", t, plan)
    else:
        _outbound(conv, conv.reply_channel or channel, agent, rng.choice(REPLIES), t, ext + "-r1")
    status = {"resolved": Status.RESOLVED, "waiting": Status.WAITING}.get(plan.outcome, Status.OPEN)
    Conversation.objects.filter(pk=conv.pk).update(
        assignee=agent,
        status=status,
        first_response_at=t,
        sla_first_response_due=None,
        resolved_at=t if status == Status.RESOLVED else None,
        last_message_at=max(conv.last_message_at, t),
    )
    return made_call


def _ingest(
    channel: Channel,
    ext: str,
    kind: str,
    value: str,
    name: str,
    text: str,
    subject: str,
    when: dt.datetime,
    *,
    public: bool = False,
    thread: str = "",
) -> Conversation:
    cm = CanonicalMessage(
        channel_kind=channel.kind,
        external_id=ext,
        author=Author(kind, value, name),
        text=text,
        subject=subject,
        sent_at=when,
        is_public=public,
        thread_id=thread,
    )
    return ingest(channel, cm, now=when).message.conversation


def _agent(conv: Conversation, agents: list[User], plan: _Plan) -> User | None:
    """Who handles it: whoever routing chose, else the demo agents in turn; one in six
    conversations stays unassigned for the "unassigned" view."""
    conv.refresh_from_db(fields=["assignee"])
    if conv.assignee is not None and conv.assignee.username in AGENTS:
        return conv.assignee
    if not agents or plan.index % 6 == 0:
        return None
    return agents[plan.index % len(agents)]


def _call(
    conv: Conversation, phone: Channel, agent: User | None, number: str, when: dt.datetime, plan: _Plan
) -> int:
    if not number and conv.person_id:
        number = (
            Identity.objects.filter(person_id=conv.person_id, kind=IdentityKind.PHONE)
            .values_list("value", flat=True)
            .first()
            or ""
        )
    outcome = CallOutcome.ANSWERED if plan.index % 5 else CallOutcome.VOICEMAIL
    minutes = 3 + plan.index % 9
    summary = (
        f"Outbound call{' with ' + number if number else ''}: {outcome.label.lower()}, {minutes} min 00 s"
    )
    notes = (
        "Talked it through; customer is fine with the proposed solution."
        if outcome == CallOutcome.ANSWERED
        else ""
    )
    message = Message.objects.create(
        conversation=conv,
        direction=Direction.NOTE,
        channel=phone,
        author_user=agent,
        text=summary + (f"\n\n{notes}" if notes else ""),
        delivery_status=Delivery.NONE,
        received_at=when,
    )
    Call.objects.create(
        conversation=conv,
        message=message,
        direction=CallDirection.OUTBOUND,
        number=number,
        duration_s=minutes * 60 if outcome == CallOutcome.ANSWERED else 40,
        outcome=outcome,
        notes=notes,
        logged_by=agent,
        created_at=when,
    )
    conv.channels.add(phone)
    return 1
