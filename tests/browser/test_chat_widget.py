"""The web chat widget on a customer's website, in a real browser: the visitor writes, the
message reaches the inbox tied to the person, the agent's answer appears in the widget."""

import time

import pytest

from rapport.channels.models import Channel, ChannelKind
from rapport.conversations.actions import conversation_reply
from rapport.conversations.models import Direction, Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SITE = "http://shop.example"
KEY = "shop-widget-key-0123456789"


def _wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_visitor_and_agent_talk_through_the_widget(page, live_server, alice, settings):
    # Process ingest and delivery as soon as they are queued: no separate worker in this test.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    Channel.objects.create(
        kind=ChannelKind.CHAT,
        name="Shop chat",
        team=alice.teams.get(),
        settings={"public_key": KEY, "origins": [SITE]},
    )
    # The shop's own page, served by the browser itself: only the widget comes from Rapport.
    html = f'<!doctype html><title>Shop</title><h1>Shop</h1><script src="{live_server.url}/chat/widget.js" data-channel="{KEY}" async></script>'
    page.route(f"{SITE}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(f"{SITE}/")

    page.click(".rapport-chat-launcher")
    page.fill(".rapport-chat-email", "visitor@example.org")
    page.fill(".rapport-chat-text", "Do you ship to Oslo? <script>alert(1)</script>")
    page.click(".rapport-chat-send")

    inbound = _wait_for(
        lambda: (
            Message.objects.filter(direction=Direction.INBOUND)
            .select_related("person", "conversation")
            .first()
        )
    )
    assert "Do you ship to Oslo?" in inbound.text
    assert inbound.person is not None
    assert inbound.person.identities.filter(kind="email", value="visitor@example.org").exists()

    conversation_reply(actor=alice, conversation=inbound.conversation, text="Yes — in two days.")
    page.locator(".rapport-chat-agent", has_text="Yes — in two days.").wait_for(timeout=15000)
    # The visitor's own text is shown as text, never run.
    assert "<script>alert(1)</script>" in page.inner_text(".rapport-chat-log")
    assert page.console_errors == []
