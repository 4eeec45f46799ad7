"""Hostile content from customers rendered in a real browser: nothing runs, nothing leaks;
the listening dashboard draws without errors."""

import re

import pytest

from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_HTML = (
    '<p>Hello<script>alert("xss")</script></p><img src=x onerror="alert(1)">'
    '<a href="javascript:alert(2)">click me</a><base href="http://evil.example/">'
    '<svg onload="alert(3)"><circle r="5"/></svg><a href="data:text/html,<script>alert(4)</script>">data</a>'
)


def test_hostile_email_html_is_shown_safely_in_the_conversation(page, live_server, alice):
    channel = webhook_channel(alice.teams.get())
    result = ingest(
        channel,
        CanonicalMessage(
            "webhook",
            "evil-1",
            Author("email", "mallory@example.org", "<b>Mallory</b>"),
            text="Hello — see the HTML part",
            html=HOSTILE_HTML,
        ),
    )
    conversation = result.message.conversation
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/inbox/{conversation.pk}/")
    main = page.locator("main")
    assert "Hello" in main.inner_text()
    # No script ran (a dialog would fail the test via the fixture), and the dangerous parts are gone.
    html = main.inner_html()
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "data:text/html" not in html and "<base" not in html and "onload" not in html
    assert page.evaluate("() => document.baseURI").startswith(live_server.url)
    assert page.console_errors == []


def test_listening_dashboard_draws_its_charts(page, live_server, alice):
    from rapport.listening.demo import seed_listening

    seed_listening(mentions=300, seed=3)
    log_in(page, live_server, "alice")
    response = page.goto(f"{live_server.url}/listening/")
    assert response.status == 200
    assert page.locator("main svg").count() >= 1
    assert re.search(r"[Ss]hare of voice", page.inner_text("main"))
    assert page.console_errors == []
