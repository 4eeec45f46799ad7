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
