import datetime as dt
import json

import pytest

from rapport.listening.http import FetchError, StreamStalled
from rapport.listening.models import ListeningQuery, ListeningSource, Mention, SourceCursor
from rapport.listening.polling import poll_all
from rapport.listening.sources.registry import poller_for
from rapport.listening.sources.x import stream as xs
from rapport.listening.testing import fixture_bytes, fixture_json

NOW = dt.datetime(2025, 1, 18, tzinfo=dt.UTC)
STREAM = "https://api.x.com/2/tweets/search/stream"
RULES = STREAM + "/rules"


@pytest.fixture
def source(db):
    s = ListeningSource(kind="x_stream", name="X live", config={"terms": ["acme", "#acmefail"]})
    s.credentials = {"bearer_token": "T0KEN"}
    s.save()
    return s


def rules_of(source, *values):
    return {"data": [{"id": str(i), "value": v, "tag": f"rapport:{source.pk}"} for i, v in enumerate(values)]}


@pytest.mark.django_db
def test_stream_lines_and_keep_alives_become_mentions_and_rules_are_synced(web, source):
    # X already holds one stale rule of ours, one wanted rule, and someone else's rule.
    listed = fixture_json("x", "stream_rules.json")
    for rule in listed["data"][:2]:
        rule["tag"] = f"rapport:{source.pk}"
    web.add(RULES, body=listed)
    web.add(RULES, method="POST", body=fixture_bytes("x", "stream_rules_delete.json"))
    web.add(RULES, method="POST", body=fixture_bytes("x", "stream_rules_add.json"))
    web.add(STREAM, body=fixture_bytes("x", "stream.ndjson"))
    result = poller_for(source).poll(now=NOW)
    assert (result.stored, result.fetched, result.bad_items, result.errors) == (2, 2, 0, [])
    # stale "globex" deleted, "#acmefail" added; "cats has:images" (not ours) untouched
    assert web.posted == [
        (RULES, {"delete": {"ids": ["1880000000000000501"]}}),
        (RULES, {"add": [{"value": "#acmefail -is:retweet", "tag": f"rapport:{source.pk}"}]}),
    ]
    url, headers = web.calls[-1]
    assert url.startswith(STREAM + "?") and "expansions=author_id" in url and "user.fields=" in url
    assert headers["Authorization"] == "Bearer T0KEN"
    m = Mention.objects.get(external_id="1880000000000000101")
    assert (m.source_kind, m.source_id, m.author_handle, m.author_followers) == (
        "x",
        source.pk,
        "bigvoice",
        250000,
    )
    assert m.sentiment == "negative" and "acmefail" in m.hashtags
    assert web.closed == [url]
    # Same wanted rules next time: no rules calls at all, straight to the stream.
    calls = len(web.calls)
    poller_for(source).poll(now=NOW)
    assert [u for u, _ in web.calls[calls:]] == [url] and Mention.objects.count() == 2


@pytest.mark.django_db
def test_rules_follow_the_queries_and_an_invalid_rule_is_reported(web, source, alice):
    source.config = {}
    source.save()
    ListeningQuery.objects.create(owner=alice, name="Acme", text='acme OR "acme cloud"')
    web.add(RULES, body={"meta": {"result_count": 0}})
    web.add(
        RULES,
        method="POST",
        body={
            "data": [{"value": "acme -is:retweet", "tag": f"rapport:{source.pk}", "id": "1"}],
            "errors": [{"value": '"acme cloud" -is:retweet', "title": "DuplicateRule"}],
            "meta": {"summary": {"created": 1, "not_created": 1}},
        },
    )
    web.add(STREAM, body=b"\r\n")
    result = poller_for(source).poll(now=NOW)
    added = web.posted[0][1]["add"]
    assert [r["value"] for r in added] == ["acme -is:retweet", '"acme cloud" -is:retweet']
    assert result.errors == ["""rule '"acme cloud" -is:retweet': DuplicateRule"""]


@pytest.mark.django_db
def test_bounded_read_stops_at_max_tweets_and_max_seconds(web, source):
    source.config = {**source.config, "rules": ["acme"]}
    source.save()
    web.add(RULES, body=rules_of(source, "acme"))
    line = fixture_bytes("x", "stream.ndjson").splitlines(keepends=True)[0]
    tweets = [line.replace(b"1880000000000000101", str(1880000000000001000 + i).encode()) for i in range(5)]
    web.add(STREAM, lines=tweets)
    web.add(STREAM, lines=[b"\r\n"] * 50 + tweets)
    assert poller_for(source).poll(now=NOW, max_tweets=3).stored == 3
    poller = poller_for(source)
    ticks = iter(range(100))
    poller.clock = lambda: float(next(ticks))  # one second per line: keep-alives use up the time
    result = poller.poll(now=NOW, max_seconds=10)
    assert result.stored == 0 and not result.errors


@pytest.mark.django_db
def test_a_bad_line_an_error_notice_and_a_drop_do_not_lose_stored_tweets(web, source):
    web.add(RULES, body=rules_of(source, "acme -is:retweet", "#acmefail -is:retweet"))
    good = fixture_bytes("x", "stream.ndjson").splitlines(keepends=True)
    web.add(
        STREAM,
        lines=[
            good[0],
            b"{not json\r\n",
            b'{"data": {"id": "x"}}\r\n',
            fixture_bytes("x", "stream_disconnect.json") + b"\r\n",
            good[2],
            FetchError("connection reset"),
        ],
    )
    result = poller_for(source).poll(now=NOW)
    assert result.stored == 2 and result.bad_items == 2
    assert any("operational-disconnect" in e for e in result.errors)
    assert any("connection reset" in e for e in result.errors)
    # a drop of an established connection is retried at once
    assert SourceCursor.objects.get(source=source, key="stream").not_before is None


@pytest.mark.django_db
def test_stall_is_reported_and_reconnects_at_once(web, source):
    web.add(RULES, body=rules_of(source, "acme -is:retweet", "#acmefail -is:retweet"))
    web.add(STREAM, lines=[b"\r\n", StreamStalled("No data for 21 s")])
    result = poller_for(source).poll(now=NOW, max_seconds=200)
    assert result.errors == ["stream: No data for 21 s; reconnecting"]
    assert SourceCursor.objects.get(source=source, key="stream").not_before is None


@pytest.mark.django_db
def test_reconnect_backoff_follows_x_documentation(web, source):
    web.add(RULES, body=rules_of(source, "acme -is:retweet", "#acmefail -is:retweet"))
    too_many = fixture_bytes("x", "stream_too_many_connections.json")
    web.add(STREAM, status=429, body=too_many)
    cursor = lambda: SourceCursor.objects.get(source=source, key="stream")  # noqa: E731
    result = poller_for(source).poll(now=NOW)
    assert result.rate_limited == 1 and "maximum allowed connection limit" in result.errors[0]
    assert cursor().not_before == NOW + dt.timedelta(minutes=1)
    assert poller_for(source).poll(now=NOW + dt.timedelta(seconds=30)).rate_limited == 1  # waits
    assert len([u for u, _ in web.calls if u.startswith(STREAM + "?")]) == 1
    poller_for(source).poll(now=NOW + dt.timedelta(minutes=1))
    assert cursor().not_before == NOW + dt.timedelta(minutes=3)  # doubled: 2 minutes
    # HTTP errors: 5 s doubling, at most 320 s
    assert [xs.http_backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 20)] == [5, 10, 20, 320, 320, 320]
    # network errors: +250 ms each attempt, at most 16 s
    assert [xs.network_backoff(n).total_seconds() for n in (1, 2, 64, 100)] == [0.25, 0.5, 16, 16]
    # 429 waits for x-rate-limit-reset when that is later
    reset = str(int((NOW + dt.timedelta(minutes=15)).timestamp()))
    assert xs.rate_limit_backoff(1, reset, NOW) == dt.timedelta(minutes=15)


@pytest.mark.django_db
def test_http_error_and_network_error_back_off(web, source):
    web.add(RULES, body=rules_of(source, "acme -is:retweet", "#acmefail -is:retweet"))
    web.add(STREAM, status=503, body=b"<html>down</html>")
    web.add(STREAM, lines=FetchError("Cannot resolve api.x.com"))
    result = poller_for(source).poll(now=NOW)
    assert result.errors == ["HTTP 503 from the X stream: <html>down</html>"]
    assert SourceCursor.objects.get(source=source, key="stream").not_before == NOW + dt.timedelta(seconds=5)
    later = NOW + dt.timedelta(seconds=5)
    poller_for(source).poll(now=later)
    assert SourceCursor.objects.get(source=source, key="stream").not_before == later + dt.timedelta(
        milliseconds=500
    )


@pytest.mark.django_db
def test_rules_rate_limit_does_not_stop_the_stream(web, source):
    web.add(RULES, status=429, headers={"Retry-After": "900"})
    web.add(STREAM + "?", body=fixture_bytes("x", "stream.ndjson"))
    result = poller_for(source).poll(now=NOW)
    assert result.stored == 2 and result.rate_limited == 1
    assert SourceCursor.objects.get(source=source, key="rules").not_before == NOW + dt.timedelta(seconds=900)


@pytest.mark.django_db
def test_continuous_sources_are_left_to_their_own_process(web, source):
    source.config = {**source.config, "mode": "continuous"}
    source.save()
    assert poll_all() == []
    assert web.calls == []


@pytest.mark.django_db
def test_run_forever_reconnects_and_stops(web, source):
    web.add(RULES, body=rules_of(source, "acme -is:retweet", "#acmefail -is:retweet"))
    web.add(STREAM + "?", body=fixture_bytes("x", "stream.ndjson"))
    web.add(STREAM + "?", body=b"\r\n")
    reports = []
    xs.run_forever(
        source.pk, should_stop=lambda: len(reports) >= 2, sleep=lambda s: None, report=reports.append
    )
    assert [r.stored for r in reports] == [2, 0]
    assert len(web.closed) == 2
    assert json.loads(json.dumps(reports[0].as_dict()))["source_id"] == source.pk


@pytest.mark.django_db
def test_listen_stream_needs_an_x_stream_source(source):
    from django.core.management import CommandError, call_command

    rss = ListeningSource.objects.create(kind="rss", name="Blog", config={})
    for bad in (rss.pk, 999999):
        with pytest.raises(CommandError, match="No X filtered stream source"):
            call_command("listen", "--stream", str(bad))
