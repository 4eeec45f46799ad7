import datetime as dt

import pytest

from rapport.listening.models import ListeningSource, SourceCursor
from rapport.listening.sources.bluesky.normalise import normalise
from rapport.listening.sources.registry import poller_for
from rapport.listening.testing import fixture_bytes, fixture_json

NOW = dt.datetime(2025, 1, 19, tzinfo=dt.UTC)


def test_post_is_normalised_with_url_links_and_tags():
    posts = fixture_json("bluesky", "search_posts.json")["posts"]
    m = normalise(posts[0], NOW)
    assert m["external_id"] == "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3laxyzabc2k2a"
    assert m["url"] == "https://bsky.app/profile/alex.bsky.social/post/3laxyzabc2k2a"
    assert m["author_handle"] == "alex.bsky.social" and m["author_kind"] == "bluesky"
    assert m["links"] == ["https://acme.example/help"]
    assert normalise(posts[1], NOW)["hashtags"] == ["acme"]


@pytest.mark.django_db
def test_search_keeps_the_newest_time_as_its_cursor(web):
    api = "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts"
    web.add(api, body=fixture_bytes("bluesky", "search_posts.json"))
    source = ListeningSource.objects.create(kind="bluesky", name="Bsky", config={"terms": ["acme"]})
    assert poller_for(source).poll(now=NOW).stored == 2
    assert SourceCursor.objects.get(source=source).since_id == "2025-01-18T09:00:00Z"
    second = poller_for(source).poll(now=NOW)
    assert "since=2025-01-18T09%3A00%3A00Z" in web.urls()[1]
    assert second.stored == 0 and second.duplicates == 2


def test_malformed_facets_are_ignored_and_the_post_is_kept():
    # A facet or feature that is not an object used to raise AttributeError, dropping the post.
    post = fixture_json("bluesky", "search_posts.json")["posts"][0]
    post["record"]["facets"] = ["junk", {"features": ["junk", None]}, *post["record"].get("facets", [])]
    m = normalise(post, NOW)
    assert m["links"] == ["https://acme.example/help"]
    post["record"]["facets"] = 7
    assert normalise(post, NOW)["links"] == []
