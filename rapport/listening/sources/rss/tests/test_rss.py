import datetime as dt
import logging

import pytest
from django.utils import timezone

from rapport.listening.models import ListeningSource, Mention, SourceCursor
from rapport.listening.sources.base import BadDocument
from rapport.listening.sources.registry import poller_for
from rapport.listening.sources.rss.normalise import normalise, parse_feed
from rapport.listening.testing import fixture_bytes

NOW = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
FEED = "https://reviews.example.org/feed.atom"


def _source(url=FEED):
    return ListeningSource.objects.create(kind="rss", name="Reviews", config={"url": url})


def test_atom_entry_is_normalised_to_text_without_markup():
    entries = parse_feed(fixture_bytes("rss", "atom.xml"))
    m = normalise(entries[0], NOW)
    assert m["external_id"] == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    assert m["url"] == "https://reviews.example.org/acme-cloud"
    assert m["published_at"] == dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert "still waiting for a refund" in m["text"]
    assert "<" not in m["text"] and "alert(1)" not in m["text"]
    assert m["author_name"] == "Jane Reviewer"


def test_invalid_date_falls_back_to_the_fetch_time():
    entries = parse_feed(fixture_bytes("rss", "atom.xml"))
    assert normalise(entries[1], NOW)["published_at"] == NOW


def test_rss2_item_uses_guid_and_pubdate():
    entries = parse_feed(fixture_bytes("rss", "rss2.xml"))
    m = normalise(entries[0], NOW)
    assert m["external_id"] == "forum-123"
    assert m["published_at"] == dt.datetime(2025, 3, 2, 8, 15, tzinfo=dt.UTC)
    assert "crashes" in m["text"]


def test_wrong_declared_encoding_is_read_as_windows_1252():
    entries = parse_feed(fixture_bytes("rss", "wrong_encoding.xml"))
    assert "café" in normalise(entries[0], NOW)["text"]


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml", "dtd.xml"])
def test_hostile_xml_is_rejected(name):
    with pytest.raises(BadDocument, match="unsafe XML"):
        parse_feed(fixture_bytes("rss", name))


@pytest.mark.django_db
def test_poll_stores_entries_then_sends_etag_and_stores_nothing_twice(web):
    web.add(
        FEED,
        body=fixture_bytes("rss", "atom.xml"),
        headers={"ETag": '"v1"', "Last-Modified": "Sun, 02 Mar 2025 10:00:00 GMT"},
    )
    web.add(FEED, status=304)
    source = _source()
    first = poller_for(source).poll(now=NOW)
    assert first.stored == 2 and first.errors == []
    cursor = SourceCursor.objects.get(source=source, key=FEED)
    assert cursor.etag == '"v1"'
    second = poller_for(source).poll(now=NOW + dt.timedelta(minutes=5))
    assert second.not_modified == 1 and second.stored == 0
    assert web.calls[1][1]["If-None-Match"] == '"v1"'
    assert web.calls[1][1]["If-Modified-Since"] == "Sun, 02 Mar 2025 10:00:00 GMT"
    assert Mention.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml", "dtd.xml"])
def test_hostile_feed_is_logged_and_the_poller_continues_with_stored_data_untouched(web, caplog, name):
    good = "https://forum.example.net/feed.rss"
    web.add(good, body=fixture_bytes("rss", "rss2.xml"))
    source = ListeningSource.objects.create(kind="rss", name="Feeds", config={"urls": [good]})
    poller_for(source).poll(now=NOW)
    before = list(Mention.objects.order_by("id").values_list("id", "text"))
    evil = "https://evil.example/feed"
    web.add(evil, body=fixture_bytes("rss", name))
    source.config = {"urls": [evil, good]}
    source.save()
    with caplog.at_level(logging.ERROR, logger="rapport.listening"):
        result = poller_for(source).poll(now=NOW + dt.timedelta(hours=1))
    assert any("unsafe XML" in e for e in result.errors)
    assert "unsafe XML" in caplog.text
    assert list(Mention.objects.order_by("id").values_list("id", "text")) == before
    assert [u for u in web.urls() if u == good]  # the good feed was still polled after the bad one
    source.refresh_from_db()
    assert "unsafe XML" in source.last_error


@pytest.mark.django_db
def test_fifty_megabyte_feed_is_rejected_without_reading_it_all(web, caplog):
    big = b"<rss>" + b" " * (50 * 1024 * 1024) + b"</rss>"
    web.add(FEED, body=big)
    source = _source()
    with caplog.at_level(logging.ERROR, logger="rapport.listening"):
        result = poller_for(source).poll(now=NOW)
    assert result.stored == 0
    assert "larger than 10 MB" in result.errors[0]
    assert "larger than 10 MB" in caplog.text


@pytest.mark.django_db
def test_feed_that_is_not_xml_is_a_clear_error(web):
    web.add(FEED, body=b"<html><body>Oops</body")
    result = poller_for(_source()).poll(now=NOW)
    assert result.stored == 0 and "not well-formed" in result.errors[0]


@pytest.mark.django_db
def test_entry_without_title_or_text_is_skipped_and_the_rest_stored(web):
    feed = fixture_bytes("rss", "rss2.xml").replace(b"<item>", b"<item><guid>empty</guid></item><item>", 1)
    web.add(FEED, body=feed)
    result = poller_for(_source()).poll(now=timezone.now())
    assert result.bad_items == 1 and result.stored == 2
