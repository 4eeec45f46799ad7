import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from rapport.core.models import Visibility
from rapport.listening.alerts import evaluate_velocity
from rapport.listening.ingest import ingest_mentions
from rapport.listening.models import (
    Alert,
    AlertRule,
    ListeningQuery,
    ListeningSource,
    Mention,
    MentionDaily,
    RuleKind,
    SourceCursor,
    VelocityMetric,
)
from rapport.listening.sources.registry import poller_for
from rapport.people.models import Identity, Organisation, Person

NOW = timezone.now().replace(microsecond=0)


def item(ext, text="acme is fine", **kw):
    return {
        "source_kind": "x",
        "external_id": ext,
        "text": text,
        "author_kind": "x",
        "author_handle": kw.pop("handle", "someone"),
        "published_at": kw.pop("published_at", NOW),
        **kw,
    }


@pytest.fixture
def acme_query(alice):
    return ListeningQuery.objects.create(owner=alice, name="Acme", kind="brand", text="acme OR #acme")


@pytest.mark.django_db
def test_same_mention_twice_is_stored_once(acme_query):
    first = ingest_mentions([item("1"), item("1"), item("2")])
    assert (first.stored, first.duplicates) == (2, 1)
    second = ingest_mentions([item("1"), item("2"), item("3")])
    assert (second.stored, second.duplicates) == (1, 2)
    assert Mention.objects.count() == 3


@pytest.mark.django_db
def test_ingest_matches_queries_scores_and_extracts_keywords(acme_query, alice):
    other = ListeningQuery.objects.create(owner=alice, name="Beta", text="beta")
    french = ListeningQuery.objects.create(owner=alice, name="FR", text="acme", languages=["fr"])
    ingest_mentions([item("1", "Acme support is terrible, still waiting for my refund #fail", language="en")])
    m = Mention.objects.get()
    assert list(m.queries.all()) == [acme_query]
    assert other not in m.queries.all() and french not in m.queries.all()
    assert m.sentiment == "negative" and m.intent == "complaint"
    assert "refund" in m.keywords and m.hashtags == ["fail"]
    assert MentionDaily.objects.get(query_id=acme_query.pk).count == 1
    assert MentionDaily.objects.get(query_id=0).sentiment == "negative"


@pytest.mark.django_db
def test_author_is_resolved_to_a_known_person_through_identities(alice):
    org = Organisation.objects.create(owner=alice, name="Globex")
    person = Person.objects.create(owner=alice, first_name="Big", last_name="Voice", organisation=org)
    Identity.objects.create(person=person, kind="x", value="bigvoice")
    ingest_mentions([item("1", handle="@BigVoice"), item("2", handle="stranger")])
    known = Mention.objects.get(external_id="1")
    assert (known.person, known.organisation) == (person, org)
    assert Mention.objects.get(external_id="2").person is None


@pytest.mark.django_db
def test_influence_grows_with_followers_and_customer_value(alice):
    from rapport.sales.models import Deal, Pipeline, Stage

    org = Organisation.objects.create(owner=alice, name="Globex")
    person = Person.objects.create(owner=alice, first_name="C", organisation=org)
    Identity.objects.create(person=person, kind="x", value="customer")
    pipeline = Pipeline.objects.create(name="Sales")
    stage = Stage.objects.create(pipeline=pipeline, name="Won", is_won=True, probability=100)
    Deal.objects.create(
        owner=alice,
        name="Big",
        pipeline=pipeline,
        stage=stage,
        status="won",
        amount=Decimal("50000"),
        organisation=org,
    )
    ingest_mentions(
        [
            item("small", handle="nobody", author_followers=10),
            item("big", handle="famous", author_followers=500000),
            item("cust", handle="customer", author_followers=10),
        ]
    )
    inf = dict(Mention.objects.values_list("external_id", "influence"))
    assert inf["big"] > inf["small"] and inf["cust"] > inf["small"] + 15


@pytest.mark.django_db
def test_a_bad_item_is_counted_and_the_rest_stored(caplog):
    with caplog.at_level(logging.WARNING, logger="rapport.listening"):
        result = ingest_mentions([item("1"), {"source_kind": "myspace", "external_id": "x"}, item("2")])
    assert (result.stored, result.bad) == (2, 1)
    assert "unknown source kind" in caplog.text


@pytest.mark.django_db
def test_mixed_emoji_and_empty_texts_are_stored():
    result = ingest_mentions([item("1", "🔥🔥🔥"), item("2", ""), item("3", "acme は最高 c'est génial")])
    assert result.stored == 3


@pytest.mark.django_db
def test_rate_limit_waits_for_retry_after_and_backs_off(web):
    api = "https://api.x.com/2/tweets/search/recent"
    web.add(api, status=429, headers={"Retry-After": "120"})
    web.add(api, status=429)
    web.add(api, body={"data": [{"id": "5", "text": "acme", "author_id": "1"}], "meta": {"newest_id": "5"}})
    source = ListeningSource.objects.create(kind="x", name="X", config={"terms": ["acme"]})
    result = poller_for(source).poll(now=NOW)
    assert result.rate_limited == 1
    cursor = SourceCursor.objects.get(source=source)
    assert cursor.not_before == NOW + dt.timedelta(seconds=120)
    # Before Retry-After has passed the source is not asked at all.
    poller_for(source).poll(now=NOW + dt.timedelta(seconds=60))
    assert len(web.calls) == 1
    # A 429 without Retry-After backs off exponentially (2nd failure: 2 minutes).
    later = NOW + dt.timedelta(seconds=121)
    poller_for(source).poll(now=later)
    cursor.refresh_from_db()
    assert cursor.not_before == later + dt.timedelta(minutes=2)
    done = poller_for(source).poll(now=later + dt.timedelta(minutes=3))
    assert done.stored == 1
    cursor.refresh_from_db()
    assert cursor.failures == 0 and cursor.not_before is None


@pytest.mark.django_db
def test_server_errors_back_off_and_other_sources_keys_continue(web):
    web.add("https://a.example/feed", status=500)
    web.add(
        "https://b.example/feed",
        body=b"<rss version='2.0'><channel><item><guid>1</guid><title>acme</title></item></channel></rss>",
    )
    source = ListeningSource.objects.create(
        kind="rss", name="F", config={"urls": ["https://a.example/feed", "https://b.example/feed"]}
    )
    result = poller_for(source).poll(now=NOW)
    assert result.stored == 1 and "HTTP 500" in result.errors[0]
    assert SourceCursor.objects.get(key="https://a.example/feed").not_before > NOW


def test_ssrf_guard_refuses_private_addresses(settings):
    from rapport.listening.http import FetchError, fetch

    settings.RAPPORT_LISTENING_ALLOW_PRIVATE = False
    for url in (
        "http://127.0.0.1/feed",
        "http://[::ffff:10.0.0.1]/",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
    ):
        with pytest.raises(FetchError):
            fetch(url)


# --- alerts ------------------------------------------------------------------------------


@pytest.fixture
def vip(alice, bob):
    org = Organisation.objects.create(owner=bob, name="Initech")
    person = Person.objects.create(
        owner=bob, first_name="Vera", last_name="Important", is_vip=True, organisation=org
    )
    Identity.objects.create(person=person, kind="x", value="vera")
    return person


@pytest.mark.django_db
def test_vip_complaint_raises_an_alert_owned_by_the_account_owner_and_emails_them(alice, bob, vip):
    rule = AlertRule.objects.create(owner=alice, name="VIPs", kind=RuleKind.CUSTOMER_COMPLAINT)
    ingest_mentions(
        [
            item("1", "Acme lost my order again, this is unacceptable", handle="vera"),
            item("2", "acme is lovely", handle="vera"),
        ]
    )
    alert = Alert.objects.get()
    assert alert.rule == rule and alert.owner == bob  # the organisation's owner, not the rule's
    assert list(alert.mentions.values_list("external_id", flat=True)) == ["1"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bob@rapport.test"]
    # The same mention seen again raises nothing new.
    ingest_mentions([item("1", "Acme lost my order again", handle="vera")])
    assert Alert.objects.count() == 1


@pytest.mark.django_db
def test_unknown_author_complaining_is_not_a_customer_complaint(alice):
    AlertRule.objects.create(owner=alice, name="VIPs", kind=RuleKind.CUSTOMER_COMPLAINT)
    ingest_mentions([item("1", "Acme lost my order again, unacceptable", handle="random")])
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_negative_mention_above_the_influence_threshold_alerts_the_rule_owner(alice):
    AlertRule.objects.create(owner=alice, name="Loud", kind=RuleKind.NEGATIVE_INFLUENCE, min_influence=50)
    ingest_mentions(
        [
            item("quiet", "acme is awful and broken", author_followers=20),
            item("loud", "acme is awful and broken", author_followers=2_000_000, likes=5000),
            item("happy", "acme is wonderful", author_followers=2_000_000),
        ]
    )
    alert = Alert.objects.get()
    assert alert.owner == alice and alert.mentions.get().external_id == "loud"


@pytest.mark.django_db
def test_velocity_spike_fires_once_over_its_baseline(alice):
    rule = AlertRule.objects.create(
        owner=alice,
        name="Spike",
        kind=RuleKind.VELOCITY,
        metric=VelocityMetric.VOLUME,
        window_hours=24,
        baseline_days=7,
        factor=3,
        min_count=10,
        is_active=False,
    )
    # Baseline: 2 a day for a week.
    ingest_mentions(
        [item(f"b{i}", published_at=NOW - dt.timedelta(days=2 + i // 2, hours=1)) for i in range(14)]
    )
    assert evaluate_velocity(rule, now=NOW) is None
    ingest_mentions(
        [
            item(f"s{i}", "acme is down again, awful", published_at=NOW - dt.timedelta(hours=i % 20))
            for i in range(30)
        ]
    )
    alert = evaluate_velocity(rule, now=NOW)
    assert alert is not None and "spike" in alert.title.lower()
    assert alert.mentions.count() > 0
    assert evaluate_velocity(rule, now=NOW + dt.timedelta(minutes=5)) is None  # cooldown


@pytest.mark.django_db
def test_negative_share_spike(alice):
    rule = AlertRule.objects.create(
        owner=alice,
        name="Neg",
        kind=RuleKind.VELOCITY,
        metric=VelocityMetric.NEGATIVE_SHARE,
        window_hours=24,
        baseline_days=7,
        factor=2,
        min_count=5,
        is_active=False,
    )
    ingest_mentions(
        [item(f"b{i}", "acme is great", published_at=NOW - dt.timedelta(days=3, hours=i)) for i in range(20)]
    )
    ingest_mentions(
        [
            item(f"n{i}", "acme is broken and awful", published_at=NOW - dt.timedelta(hours=i))
            for i in range(8)
        ]
    )
    assert evaluate_velocity(rule, now=NOW) is not None


@pytest.mark.django_db
def test_alert_rule_auto_converts_to_a_conversation_routed_to_the_account_owner(alice, bob, vip):
    from rapport.conversations.models import Conversation

    AlertRule.objects.create(owner=alice, name="VIPs", kind=RuleKind.CUSTOMER_COMPLAINT, auto_convert=True)
    ingest_mentions([item("1", "Acme lost my order again, unacceptable", handle="vera")])
    m = Mention.objects.get()
    assert m.state == "converted" and m.conversation is not None
    conv = Conversation.objects.get()
    assert conv.person == vip and conv.assignee == bob
    assert conv.messages.get().is_public


@pytest.mark.django_db
def test_queries_and_rules_respect_visibility(alice, bob):
    from rapport.listening.selectors import alerts_visible, queries_visible

    q = ListeningQuery.objects.create(owner=alice, name="Secret", text="acme", visibility=Visibility.PRIVATE)
    rule = AlertRule.objects.create(
        owner=alice,
        name="Mine",
        kind=RuleKind.NEGATIVE_INFLUENCE,
        min_influence=0,
        visibility=Visibility.PRIVATE,
    )
    ingest_mentions([item("1", "acme is awful")])
    assert list(queries_visible(alice)) == [q] and list(queries_visible(bob)) == []
    assert alerts_visible(alice).count() == 1 and alerts_visible(bob).count() == 0
    assert rule.alerts.count() == 1


@pytest.mark.django_db
def test_past_mentions_raise_influence_and_come_from_the_author_totals():
    from rapport.listening.ingest import resolve_authors
    from rapport.listening.models import AuthorTotal

    ingest_mentions([item(f"old{i}", handle="regular") for i in range(3)])
    ingest_mentions([item("other", handle="regular", source_kind="mastodon", author_kind="mastodon")])
    assert sum(AuthorTotal.objects.filter(author_handle="regular").values_list("total", flat=True)) == 4
    authors = resolve_authors(
        [{"author_kind": "x", "author_handle": "regular"}, {"author_kind": "x", "author_handle": "new"}]
    )
    assert authors[("x", "regular")].past_mentions == 4  # across sources, as counting mentions gave
    assert authors[("x", "new")].past_mentions == 0
    ingest_mentions([item("again", handle="regular"), item("first", handle="new")])
    inf = dict(Mention.objects.values_list("external_id", "influence"))
    assert inf["again"] > inf["first"]
