import datetime as dt

import pytest

from rapport.listening.models import ListeningSource, SourceCursor
from rapport.listening.sources.reddit.normalise import normalise
from rapport.listening.sources.registry import poller_for
from rapport.listening.testing import fixture_bytes, fixture_json

NOW = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)


def test_post_is_normalised_with_title_body_and_permalink():
    children = fixture_json("reddit", "search.json")["data"]["children"]
    m = normalise(children[0], NOW)
    assert m["external_id"] == "t3_1i2abce"
    assert m["text"].startswith("Alternatives to Acme?\nHas anyone moved")
    assert "&amp;" not in m["text"]
    assert m["url"] == "https://www.reddit.com/r/selfhosted/comments/1i2abce/alternatives_to_acme/"
    assert m["author_handle"] == "u/throwaway_sysadmin"
    assert m["published_at"] == dt.datetime.fromtimestamp(1737200000, tz=dt.UTC)
    deleted = normalise(children[1], NOW)
    assert deleted["author_handle"] == "" and deleted["links"] == ["https://status.acme.example/incident/42"]


@pytest.mark.django_db
def test_search_asks_for_posts_before_the_newest_fullname(web):
    api = "https://www.reddit.com/search.json"
    web.add(api, body=fixture_bytes("reddit", "search.json"))
    source = ListeningSource.objects.create(kind="reddit", name="Reddit", config={"terms": ["acme"]})
    assert poller_for(source).poll(now=NOW).stored == 2
    assert SourceCursor.objects.get(source=source).since_id == "t3_1i2abce"
    poller_for(source).poll(now=NOW)
    assert "before=t3_1i2abce" in web.urls()[1]


@pytest.mark.django_db
def test_a_child_whose_data_is_not_an_object_is_skipped_without_aborting_the_poll(web):
    # `data` as a string on the first child used to raise AttributeError out of read().
    api = "https://www.reddit.com/search.json"
    listing = fixture_json("reddit", "search.json")
    listing["data"]["children"].insert(0, {"kind": "t3", "data": "junk"})
    web.add(api, body=listing)
    source = ListeningSource.objects.create(kind="reddit", name="Reddit", config={"terms": ["acme"]})
    result = poller_for(source).poll(now=NOW)
    assert (result.stored, result.bad_items) == (2, 1)
    assert SourceCursor.objects.get(source=source).since_id == "t3_1i2abce"
