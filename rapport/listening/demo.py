"""Demo listening data: queries for a brand, a product and a competitor, and a few thousand
mentions over the last 60 days through the real ingest pipeline (scoring, matching,
rollups), ending with a brewing complaint: an influential author's negative post in the
last two days and a rising wave of negative mentions after it."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.listening.ingest import ingest_mentions
from rapport.listening.models import AlertRule, ListeningQuery, ListeningSource, RuleKind, VelocityMetric

BRAND = "Rapport"
PRODUCT = "Rapport Inbox"
COMPETITOR = "Hubbly"

_POSITIVE = [
    "Just switched our team to {b} and the inbox is so much calmer. Love it!",
    "{b} support answered in 5 minutes, thank you so much!",
    "The new {p} is fantastic, finally one place for every channel #crm",
    "Big thanks to the {b} folks, the import of 40k contacts just worked",
    "{b} keeps getting better. Share of voice dashboards are great",
    "Honestly {b} is the best CRM we have used. Works great",
]
_NEUTRAL = [
    "Anyone using {b} with Mastodon? How does it handle replies?",
    "How much does {b} cost for a team of 12?",
    "Reading the {b} docs on pipelines today",
    "{p} release notes are out: https://rapport.example/changelog",
    "Comparing {b} and {c} for our agency, any tips?",
    "Webinar on {b} listening next Tuesday",
]
_NEGATIVE = [
    "{b} sync has been slow all morning, annoying",
    "Still waiting for a reply from {b} support about my invoice",
    "{p} keeps logging me out. Frustrating",
    "Why is the {b} export missing the phone column? Not great",
]
_COMPETITOR = [
    "{c} raised prices again, looking for alternatives",
    "{c} is fine but the reporting is weak",
    "Loving {c} mobile app so far",
    "{c} support never answers, thinking about moving to {b}",
    "Moving from {c} to {b} this quarter",
]
_BREWING = [
    "{b} double charged me and nobody answers. Still waiting after 3 days! #RapportFail",
    "Same here, {b} charged us twice this month. Unacceptable #RapportFail",
    "Is {b} billing broken? Charged twice, support silent #RapportFail",
    "{b} took my money twice. I want a refund now, otherwise I cancel my subscription",
    "Wow, the {b} billing mess is real. Thinking of switching to {c} #RapportFail",
]
_INFLUENCER = (
    "Seriously disappointed with {b}: charged twice, three tickets, zero answers. "
    "If this is how they treat paying customers, I will cancel my subscription. #RapportFail"
)
_SOURCES = ["x", "mastodon", "bluesky", "reddit", "rss"]
_FIRST = [
    "ana",
    "ben",
    "chloe",
    "dev",
    "emma",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jonas",
    "kai",
    "lena",
    "mia",
    "noah",
]
_LANGS = ["en"] * 8 + ["fr", "de"]


def _author(rng: random.Random, kind: str) -> tuple[str, str, int]:
    name = rng.choice(_FIRST)
    n = rng.randint(1, 400)
    followers = int(rng.paretovariate(1.2) * 40)
    if kind == "mastodon":
        return f"@{name}{n}@mastodon.social", name.title(), followers
    if kind == "bluesky":
        return f"{name}{n}.bsky.social", name.title(), followers
    if kind == "reddit":
        return f"u/{name}_{n}", name, 0
    if kind == "rss":
        return f"{name.title()} (blog)", name.title(), 0
    return f"{name}{n}", name.title(), followers


def _owner() -> User:
    user = User.objects.filter(role__in=[Role.MANAGER, Role.ADMIN], is_active=True).order_by("id").first()
    user = user or User.objects.filter(is_active=True).exclude(username="rapport-bot").order_by("id").first()
    if user is None:
        user = User.objects.create_user(username="demo", password=None, role=Role.MANAGER, first_name="Demo")
    return user


def seed_listening(*, mentions: int = 3000, seed: int = 1, now: dt.datetime | None = None) -> dict[str, int]:
    """Idempotent per seed: mention ids are derived from the seed, so running it twice adds
    nothing the second time."""
    rng = random.Random(seed)
    now = now or timezone.now()
    owner = _owner()
    queries = {}
    for name, kind, text, competitor in (
        (BRAND, "brand", "rapport OR #rapport OR #rapportfail OR @rapport", False),
        (PRODUCT, "product", '"rapport inbox" OR (rapport AND inbox)', False),
        (COMPETITOR, "competitor", "hubbly OR #hubbly", True),
    ):
        queries[name], _ = ListeningQuery.objects.get_or_create(
            name=name, defaults={"owner": owner, "kind": kind, "text": text, "is_competitor": competitor}
        )
    for name, kind, config in (
        ("Mastodon #rapport", "mastodon", {"instance": "https://mastodon.social", "hashtags": ["rapport"]}),
        ("Review sites", "rss", {"urls": ["https://reviews.example.org/rapport.atom"]}),
    ):
        ListeningSource.objects.get_or_create(
            name=name, defaults={"kind": kind, "config": config, "is_active": False}
        )
    AlertRule.objects.get_or_create(
        name="Influential complaint",
        defaults={"owner": owner, "kind": RuleKind.NEGATIVE_INFLUENCE, "min_influence": 60, "email": False},
    )
    AlertRule.objects.get_or_create(
        name="Customer or VIP complaining",
        defaults={"owner": owner, "kind": RuleKind.CUSTOMER_COMPLAINT, "email": False},
    )
    AlertRule.objects.get_or_create(
        name="Negative spike",
        defaults={
            "owner": owner,
            "kind": RuleKind.VELOCITY,
            "metric": VelocityMetric.NEGATIVE_SHARE,
            "window_hours": 48,
            "baseline_days": 28,
            "factor": 2.0,
            "min_count": 15,
            "email": False,
        },
    )

    items = []
    brewing = max(40, mentions // 25)
    regular = max(0, mentions - brewing - 1)
    for i in range(regular):
        kind = rng.choice(_SOURCES)
        age = dt.timedelta(days=rng.uniform(2.2, 60))
        roll = rng.random()
        pool = (
            _COMPETITOR
            if roll < 0.25
            else _POSITIVE
            if roll < 0.6
            else _NEUTRAL
            if roll < 0.88
            else _NEGATIVE
        )
        handle, name, followers = _author(rng, kind)
        items.append(
            _item(rng, kind, f"demo{seed}-{i}", rng.choice(pool), handle, name, followers, now - age)
        )
    for i in range(brewing):
        kind = rng.choice(["x", "x", "mastodon", "bluesky", "reddit"])
        handle, name, followers = _author(rng, kind)
        age = dt.timedelta(hours=rng.uniform(0, 40))
        items.append(
            _item(rng, kind, f"demo{seed}-b{i}", rng.choice(_BREWING), handle, name, followers, now - age)
        )
    items.append(
        _item(
            rng,
            "x",
            f"demo{seed}-influencer",
            _INFLUENCER,
            "techreviewjane",
            "Jane Tech Review",
            184_000,
            now - dt.timedelta(hours=44),
            likes=2300,
            shares=640,
            replies=410,
        )
    )
    items.sort(key=lambda x: x["published_at"])
    stored = 0
    for i in range(0, len(items), 1000):
        stored += ingest_mentions(items[i : i + 1000], now=now).stored
    return {"queries": len(queries), "mentions": stored}


def _item(rng, kind, ext, template, handle, name, followers, when, likes=None, shares=None, replies=None):
    text = template.format(b=BRAND, p=PRODUCT, c=COMPETITOR)
    return {
        "source_kind": kind,
        "external_id": ext,
        "url": f"https://{kind}.example/{ext}",
        "author_kind": kind if kind in ("x", "mastodon", "bluesky") else "",
        "author_handle": handle,
        "author_name": name,
        "author_followers": followers,
        "text": text,
        "language": rng.choice(_LANGS) if kind != "rss" else "en",
        "published_at": when,
        "likes": likes if likes is not None else int(rng.expovariate(0.3)),
        "shares": shares if shares is not None else int(rng.expovariate(1.0)),
        "replies": replies if replies is not None else int(rng.expovariate(1.2)),
        "reach": followers,
    }
