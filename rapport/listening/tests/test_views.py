import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import login
from rapport.listening.demo import seed_listening
from rapport.listening.ingest import ingest_mentions
from rapport.listening.models import Alert, ListeningQuery, Mention


def item(ext, text="acme is fine", **kw):
    return {
        "source_kind": "x",
        "external_id": ext,
        "text": text,
        "author_handle": kw.pop("handle", "someone"),
        "published_at": kw.pop("published_at", timezone.now()),
        **kw,
    }


@pytest.mark.django_db
def test_dashboard_renders_charts_with_a_bounded_number_of_queries(alice, alice_client):
    seed_listening(mentions=400, seed=3)
    with CaptureQueriesContext(connection) as small:
        r = alice_client.get("/listening/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "<svg" in body and "bar-neg" in body and "Share of voice" in body
    assert "Hubbly" in body and "style=" not in body and "<script>" not in body
    ingest_mentions([item(f"more{i}", f"rapport #topic{i} is great") for i in range(300)])
    with CaptureQueriesContext(connection) as big:
        alice_client.get("/listening/?bucket=week")
    assert len(big) == len(small) <= 20


@pytest.mark.django_db
def test_demo_data_has_a_brewing_complaint_that_raised_alerts(admin):
    result = seed_listening(mentions=600, seed=5)
    assert result["mentions"] == 600
    recent_neg = Mention.objects.filter(
        sentiment="negative", published_at__gte=timezone.now() - dt.timedelta(days=2)
    ).count()
    assert recent_neg >= 20
    assert Alert.objects.filter(title__icontains="Jane Tech Review").exists()
    assert Alert.objects.filter(rule__name="Negative spike").exists()
    assert seed_listening(mentions=600, seed=5)["mentions"] == 0  # idempotent


@pytest.mark.django_db
def test_query_syntax_error_is_shown_next_to_the_field_and_nothing_saved(alice_client):
    r = alice_client.post(
        "/listening/queries/",
        {"name": "Acme", "kind": "brand", "text": "acme AND (outage", "is_active": "on"},
    )
    assert r.status_code == 400
    assert "Unbalanced parenthesis at column 10" in r.content.decode()
    assert 'aria-invalid="true"' in r.content.decode()
    assert not ListeningQuery.objects.exists()
    ok = alice_client.post(
        "/listening/queries/", {"name": "Acme", "kind": "brand", "text": "acme", "is_active": "on"}
    )
    assert ok.status_code == 302 and ListeningQuery.objects.get().is_active


@pytest.mark.django_db
def test_hostile_mention_text_is_escaped(alice_client):
    ingest_mentions(
        [item("1", "<script>alert(1)</script><img src=x onerror=alert(2)> acme", author_name="<b>x</b>")]
    )
    m = Mention.objects.get()
    for url in ("/listening/mentions/", f"/listening/mentions/{m.pk}/"):
        body = alice_client.get(url).content.decode()
        assert "<script>alert(1)" not in body and "<img src=x" not in body and "<b>x</b>" not in body
        assert "&lt;script&gt;" in body


@pytest.mark.django_db
def test_csv_export_is_formula_safe_and_follows_filters(alice_client):
    ingest_mentions(
        [item("1", '=HYPERLINK("http://evil")', handle="@evil"), item("2", "acme is awful and broken")]
    )
    r = alice_client.get("/listening/mentions.csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    texts = {row[0]: row for row in rows[1:]}
    ids = {m.external_id: str(m.pk) for m in Mention.objects.all()}
    assert texts[ids["1"]][7].startswith("'=") and texts[ids["1"]][4] == "'@evil"
    neg = alice_client.get("/listening/mentions.csv?sentiment=negative")
    assert len(list(csv.reader(io.StringIO(b"".join(neg.streaming_content).decode("utf-8-sig"))))) == 2
    assert alice_client.get("/listening/mentions.csv?since=yesterday").status_code == 400


@pytest.mark.django_db
def test_mention_list_filters_and_bad_filter_message(alice_client):
    ingest_mentions([item("1", "acme is great"), item("2", "acme is awful and broken")])
    body = alice_client.get("/listening/mentions/?sentiment=negative").content.decode()
    assert "awful" in body and "is great" not in body
    bad = alice_client.get("/listening/mentions/?sentiment=furious").content.decode()
    assert "Some filters are not valid" in bad


@pytest.mark.django_db
def test_one_click_convert_and_sentiment_correction(alice_client, reader):
    ingest_mentions([item("1", "acme lost my parcel")])
    m = Mention.objects.get()
    assert login(reader).post(f"/listening/mentions/{m.pk}/act", {"action": "convert"}).status_code == 302
    m.refresh_from_db()
    assert m.conversation_id is None  # read-only: nothing changed
    r = alice_client.post(f"/listening/mentions/{m.pk}/act", {"action": "convert"})
    m.refresh_from_db()
    assert r.status_code == 302 and r["Location"] == f"/inbox/{m.conversation_id}/"
    alice_client.post(f"/listening/mentions/{m.pk}/act", {"action": "sentiment", "label": "positive"})
    m.refresh_from_db()
    assert m.sentiment == "positive" and m.sentiment_corrected


@pytest.mark.django_db
def test_alert_pages_respect_visibility(alice, bob, alice_client, bob_client):
    from rapport.listening.models import AlertRule, RuleKind

    AlertRule.objects.create(
        owner=alice, name="Mine", kind=RuleKind.NEGATIVE_INFLUENCE, min_influence=0, visibility="private"
    )
    ingest_mentions([item("1", "acme is awful and broken")])
    alert = Alert.objects.get()
    assert alice_client.get(f"/listening/alerts/{alert.pk}/").status_code == 200
    assert bob_client.get(f"/listening/alerts/{alert.pk}/").status_code == 404
    assert bob_client.post(f"/listening/alerts/{alert.pk}/state", {"state": "resolved"}).status_code == 404
    alice_client.post(f"/listening/alerts/{alert.pk}/state", {"state": "acknowledged"})
    alert.refresh_from_db()
    assert alert.state == "acknowledged"


@pytest.mark.django_db
def test_only_managers_add_sources(alice_client, carol):
    assert (
        alice_client.post("/listening/sources/", {"kind": "rss", "name": "x", "config": "{}"}).status_code
        == 403
    )
    r = login(carol).post(
        "/listening/sources/",
        {"kind": "rss", "name": "Blog", "config": '{"url": "https://blog.example/feed"}'},
    )
    assert r.status_code == 302
    bad = login(carol).post("/listening/sources/", {"kind": "rss", "name": "Blog", "config": "[1"})
    assert bad.status_code == 400 and "JSON object" in bad.content.decode()


@pytest.mark.django_db
def test_every_listening_page_renders(alice_client):
    seed_listening(mentions=100, seed=9)
    m = Mention.objects.first()
    q = ListeningQuery.objects.first()
    for url in (
        "/listening/",
        "/listening/mentions/",
        f"/listening/mentions/{m.pk}/",
        "/listening/queries/",
        f"/listening/queries/{q.pk}/",
        "/listening/alerts/",
        "/listening/alerts/?state=all",
        "/listening/rules/",
        "/listening/sources/",
    ):
        r = alice_client.get(url)
        assert r.status_code in (200, 403), url
        assert 'style="' not in r.content.decode(), url
