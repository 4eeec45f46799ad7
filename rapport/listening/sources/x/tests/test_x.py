import datetime as dt

import pytest

from rapport.listening.models import ListeningSource, Mention, SourceCursor
from rapport.listening.sources.registry import poller_for
from rapport.listening.sources.x.normalise import normalise
from rapport.listening.testing import fixture_bytes, fixture_json

NOW = dt.datetime(2025, 1, 18, tzinfo=dt.UTC)
API = "https://api.x.com/2/tweets/search/recent"


def test_tweet_is_normalised_with_its_author_from_includes():
    data = fixture_json("x", "recent_search.json")
    users = {u["id"]: u for u in data["includes"]["users"]}
    m = normalise(data["data"][0], NOW, users=users)
    assert m["external_id"] == "1880000000000000002"
    assert m["author_handle"] == "bigvoice" and m["author_kind"] == "x"
    assert m["author_followers"] == 250000
    assert m["url"] == "https://x.com/BigVoice/status/1880000000000000002"
    assert m["links"] == ["https://acme.example/orders/991"]
    assert (m["likes"], m["shares"], m["replies"], m["reach"]) == (30, 14, 4, 15800)


@pytest.mark.django_db
def test_recent_search_keeps_since_id_and_uses_the_bearer_token(web):
    web.add(API, body=fixture_bytes("x", "recent_search.json"))
    web.add(API, body={"meta": {"result_count": 0}})
    source = ListeningSource(kind="x", name="X", config={"terms": ["acme"]})
    source.credentials = {"bearer_token": "T0KEN"}
    source.save()
    assert poller_for(source).poll(now=NOW).stored == 2
    assert SourceCursor.objects.get(source=source).since_id == "1880000000000000002"
    poller_for(source).poll(now=NOW)
    url, headers = web.calls[1]
    assert "since_id=1880000000000000002" in url and "expansions=author_id" in url
    assert headers["Authorization"] == "Bearer T0KEN"
    assert Mention.objects.count() == 2
    # An empty page keeps the cursor where it was.
    assert SourceCursor.objects.get(source=source).since_id == "1880000000000000002"


def test_a_null_note_tweet_or_odd_author_does_not_drop_an_otherwise_fine_tweet():
    # X sends `note_tweet` only for long posts; a null one used to raise AttributeError and
    # the whole tweet was skipped as a bad item.
    tweet = {"id": "1880000000000000009", "text": "acme is down", "author_id": "7", "note_tweet": None}
    m = normalise(tweet, NOW, users={"7": "not an object"})  # hostile on purpose
    assert m["text"] == "acme is down" and m["author_handle"] == ""
    assert normalise({**tweet, "entities": {"urls": 5, "hashtags": "x"}}, NOW)["links"] == []


@pytest.mark.django_db
def test_a_malformed_includes_block_rejects_nothing_and_does_not_abort_the_poll(web):
    # `includes` as a string used to raise AttributeError out of read(), aborting the poll.
    data = fixture_json("x", "recent_search.json")
    web.add(API, body={**data, "includes": "junk"})
    source = ListeningSource(kind="x", name="X", config={"terms": ["acme"]})
    source.credentials = {"bearer_token": "T0KEN"}
    source.save()
    result = poller_for(source).poll(now=NOW)
    assert result.stored == 2 and not result.errors
    assert set(Mention.objects.values_list("author_handle", flat=True)) == {""}
