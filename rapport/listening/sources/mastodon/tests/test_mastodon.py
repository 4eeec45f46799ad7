import datetime as dt

import pytest

from rapport.listening.models import ListeningSource, Mention, SourceCursor
from rapport.listening.sources.mastodon.normalise import normalise
from rapport.listening.sources.registry import poller_for
from rapport.listening.testing import fixture_bytes, fixture_json

NOW = dt.datetime(2025, 1, 15, tzinfo=dt.UTC)
INSTANCE = "https://mastodon.social"


def test_status_is_normalised_with_text_links_and_handle():
    status = fixture_json("mastodon", "tag_timeline.json")[0]
    m = normalise(status, NOW, instance=INSTANCE)
    assert m["external_id"] == "https://mastodon.social/users/jane/statuses/113820402542384093"
    assert m["author_handle"] == "@jane@mastodon.social"
    assert m["author_kind"] == "mastodon"
    assert m["author_followers"] == 1840
    assert m["text"].startswith("Third day without a reply from #acme support.")
    assert "<" not in m["text"]
    assert m["links"] == ["https://status.acme.example/incident/42"]
    assert (m["likes"], m["shares"], m["replies"]) == (11, 5, 2)
    assert m["language"] == "en"
    assert m["hashtags"] == ["acme"]


def test_remote_account_keeps_its_server():
    status = fixture_json("mastodon", "tag_timeline.json")[1]
    m = normalise(status, NOW, instance=INSTANCE)
    assert m["author_handle"] == "@max@chaos.social"
    assert m["text"] == "Die neue #Acme App ist super & schnell!"


@pytest.mark.django_db
def test_hashtag_timeline_poll_skips_the_bad_status_and_sends_since_id_next_time(web):
    web.add(f"{INSTANCE}/api/v1/timelines/tag/acme", body=fixture_bytes("mastodon", "tag_timeline.json"))
    web.add(f"{INSTANCE}/api/v1/timelines/tag/acme", body=b"[]")
    source = ListeningSource.objects.create(
        kind="mastodon", name="Masto", config={"instance": INSTANCE, "hashtags": ["#acme"], "search": False}
    )
    result = poller_for(source).poll(now=NOW)
    assert (result.stored, result.bad_items) == (2, 1)
    assert SourceCursor.objects.get(source=source, key="tag:acme").since_id == "113820402542384093"
    poller_for(source).poll(now=NOW)
    assert "since_id=113820402542384093" in web.urls()[1]
    assert Mention.objects.count() == 2


@pytest.mark.django_db
def test_search_uses_v2_search_with_min_id(web):
    web.add(f"{INSTANCE}/api/v2/search", body=fixture_bytes("mastodon", "search.json"))
    source = ListeningSource.objects.create(
        kind="mastodon", name="Masto", config={"instance": INSTANCE, "terms": ["acme cloud"]}
    )
    result = poller_for(source).poll(now=NOW)
    assert result.stored == 1
    assert "type=statuses" in web.urls()[0] and "q=acme+cloud" in web.urls()[0]
    poller_for(source).poll(now=NOW)
    assert "min_id=113820500000000000" in web.urls()[1]
