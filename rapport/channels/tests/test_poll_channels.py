"""`rapport poll_channels`: every polled channel is polled through its connector; a revoked
token puts that channel in error without stopping the others."""

import json

from django.core.management import call_command

from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import FakeAPI, load, make_channel
from rapport.channels.models import Channel, ChannelStatus
from rapport.conversations.models import Message


def test_poll_channels_polls_active_mastodon_channels_and_stores_messages(
    north, django_capture_on_commit_callbacks
):
    channel = make_channel(
        "mastodon", north, settings={"instance_url": "https://mastodon.social"}, access_token="t"
    )
    page = json.loads(load("mastodon", "notifications.json"))
    with http.use_transport(FakeAPI((200, page))), django_capture_on_commit_callbacks(execute=True):
        call_command("poll_channels")
    assert Message.objects.filter(channel=channel).count() == 2


def test_revoked_token_puts_the_channel_in_error_and_polling_goes_on(
    north, django_capture_on_commit_callbacks
):
    broken = make_channel(
        "mastodon", north, settings={"instance_url": "https://a.example"}, access_token="old"
    )
    fine = make_channel("mastodon", north, settings={"instance_url": "https://b.example"}, access_token="ok")
    page = json.loads(load("mastodon", "notifications.json"))
    fake = FakeAPI((401, {"error": "The access token was revoked"}), (200, page))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        call_command("poll_channels")
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.status == ChannelStatus.ERROR
    assert broken.last_error
    assert fine.status == ChannelStatus.ACTIVE
    assert Message.objects.filter(channel=fine).count() == 2
    assert Channel.objects.filter(status=ChannelStatus.ERROR).count() == 1


def test_demo_channels_are_not_polled(north):
    make_channel(
        "mastodon", north, settings={"instance_url": "https://m.example", "demo": True}, access_token="t"
    )
    fake = FakeAPI()
    with http.use_transport(fake):
        call_command("poll_channels")
    assert fake.calls == []
