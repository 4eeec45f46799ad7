import io
import json

import pytest
from django.core.management import call_command

from rapport.listening.models import ListeningSource, Mention
from rapport.listening.polling import poll_all
from rapport.listening.testing import fixture_bytes


@pytest.mark.django_db
def test_listen_polls_every_active_source_once(web):
    web.add("https://forum.example.net/feed", body=fixture_bytes("rss", "rss2.xml"))
    ListeningSource.objects.create(kind="rss", name="Forum", config={"url": "https://forum.example.net/feed"})
    ListeningSource.objects.create(
        kind="rss", name="Paused", config={"url": "https://paused.example/feed"}, is_active=False
    )
    out = io.StringIO()
    call_command("listen", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["stored"] == 2
    assert web.urls() == ["https://forum.example.net/feed"]


@pytest.mark.django_db
def test_a_source_that_crashes_does_not_stop_the_others(web, monkeypatch):
    from rapport.listening.sources.rss import poller

    web.add("https://b.example/feed", body=fixture_bytes("rss", "rss2.xml"))
    broken = ListeningSource.objects.create(kind="rss", name="A", config={"url": "https://a.example/feed"})
    ListeningSource.objects.create(kind="rss", name="B", config={"url": "https://b.example/feed"})
    original = poller.Poller.keys

    def keys(self):
        if self.source.pk == broken.pk:
            raise RuntimeError("boom")
        return original(self)

    monkeypatch.setattr(poller.Poller, "keys", keys)
    results = poll_all()
    assert results[0]["errors"] == ["boom"] and results[1]["stored"] == 2
    broken.refresh_from_db()
    assert "boom" in broken.last_error
    assert Mention.objects.count() == 2


@pytest.mark.django_db
def test_unknown_source_kind_is_reported_not_raised(web):
    ListeningSource.objects.create(kind="myspace", name="Old", config={})
    assert "No poller" in poll_all()[0]["errors"][0]
