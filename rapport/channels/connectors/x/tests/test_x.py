"""X: CRC, signature, tweets and DMs normalised, duplicates, replies and DMs sent, poller."""

import base64
import hashlib
import hmac
import json

import pytest
from django.test import Client

from rapport.channels.base import SignatureError, UnknownEvent
from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import FakeAPI, load, make_channel
from rapport.channels.connectors.x import inbound, poller, signing
from rapport.channels.models import ChannelStatus, PayloadStatus, RawPayload
from rapport.conversations.models import Delivery, Message

SECRET = "x-consumer-secret"  # noqa: S105 - test fixture
ME = "1480000000000000001"


@pytest.fixture
def channel(north):
    return make_channel("x", north, consumer_secret=SECRET, access_token="x-user-token", user_id=ME)


def post_x(channel, body, *, secret=SECRET):
    return Client().post(
        f"/hooks/x/{channel.pk}/",
        data=body,
        content_type="application/json",
        headers={"X-Twitter-Webhooks-Signature": signing.sign(secret, body)},
    )


def _normalise(channel, name, headers=None):
    return inbound.normalise(
        channel, RawPayload(channel=channel, body=load("x", name), headers=headers or {})
    )


def test_crc_response_is_base64_hmac_of_the_token(channel):
    expected = (
        "sha256=" + base64.b64encode(hmac.new(SECRET.encode(), b"abc123", hashlib.sha256).digest()).decode()
    )
    assert signing.crc_response(SECRET, "abc123") == {"response_token": expected}
    response = Client().get(f"/hooks/x/{channel.pk}/", {"crc_token": "abc123"})
    assert response.status_code == 200 and response.json() == {"response_token": expected}
    assert Client().get(f"/hooks/x/{channel.pk}/").status_code == 403
    assert not RawPayload.objects.exists()


def test_signature_checks_the_raw_body():
    body = load("x", "direct_message.json")
    signing.verify(SECRET, body, signing.sign(SECRET, body))
    for bad in ("", "sha256=", signing.sign("other", body), signing.sign(SECRET, body + b"\n")):
        with pytest.raises(SignatureError):
            signing.verify(SECRET, body, bad)


def test_mention_is_public_with_handle_and_user_id(channel):
    [m] = _normalise(channel, "tweet_create_mention.json")
    assert (m.external_id, m.author.kind, m.author.value) == ("1797653871634211234", "x", "JaneDoe")
    assert m.author.profile["user_id"] == "2244994945" and m.is_public and not m.in_reply_to
    assert m.sent_at.isoformat() == "2024-06-03T14:00:00+00:00"


def test_reply_uses_the_extended_text_and_threads_on_the_parent(channel):
    [m] = _normalise(channel, "tweet_create_reply.json")
    assert m.text.endswith("I want a refund.") and m.in_reply_to == "1797654000000000000"
    assert m.attachments[0].url == "https://pbs.twimg.com/media/GPq.jpg"


def test_own_tweets_and_favourites_give_no_message(channel):
    assert _normalise(channel, "tweet_create_own.json") == []
    assert _normalise(channel, "favorite.json") == []


def test_dm_is_private_and_threaded_by_the_dm_conversation(channel):
    [m] = _normalise(channel, "direct_message.json")
    assert not m.is_public and m.author.value == "JaneDoe"
    assert m.thread_id == f"dm:2244994945-{ME}"


def test_mentions_v2_page_normalises_with_reply_refs(channel):
    first, second = _normalise(channel, "mentions_v2.json", {"X-Rapport-Event": "mentions.v2"})
    assert first.author.value == "JaneDoe" and second.author.value == "samroe"
    assert second.in_reply_to == "1797653871634211234"


def test_unknown_event_is_typed(channel):
    with pytest.raises(UnknownEvent):
        inbound.normalise(
            channel, RawPayload(channel=channel, body=b'{"for_user_id":"1","space_events":[{}]}')
        )


def test_bad_signature_is_403_and_nothing_stored(channel):
    assert post_x(channel, load("x", "tweet_create_mention.json"), secret="nope").status_code == 403
    assert not RawPayload.objects.exists()


def test_same_event_delivered_twice_is_one_payload_and_one_message(
    channel, django_capture_on_commit_callbacks
):
    body = load("x", "tweet_create_mention.json")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_x(channel, body).status_code == 200
        assert post_x(channel, body).json()["duplicate"] is True
        # the same tweet re-sent with other whitespace (new digest) is still one message
        assert post_x(channel, body.replace(b", ", b",")).status_code == 200
    assert Message.objects.count() == 1
    assert RawPayload.objects.get(delivery_id__startswith="x:").delivery_id == (
        f"x:{ME}:tweet_create_events:1797653871634211234"
    )


def test_public_mention_then_dm_stay_one_conversation(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_x(channel, load("x", "tweet_create_mention.json"))
        post_x(channel, load("x", "direct_message.json"))
    public, dm = Message.objects.order_by("id")
    assert public.person == dm.person and public.conversation == dm.conversation
    assert public.is_public and not dm.is_public


def _reply(channel, alice, fixture, answer, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_x(channel, load("x", fixture))
    fake = FakeAPI(answer)
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(
            actor=alice, conversation=Message.objects.get().conversation, text="Sorry! DM us."
        )
    reply.refresh_from_db()
    return reply, fake


def test_public_reply_posts_a_tweet_in_reply(channel, alice, django_capture_on_commit_callbacks):
    reply, fake = _reply(
        channel,
        alice,
        "tweet_create_mention.json",
        (201, {"data": {"id": "1797660000000000009", "text": "x"}}),
        django_capture_on_commit_callbacks,
    )
    assert fake.calls[0]["method"] == "POST" and fake.calls[0]["url"] == "https://api.x.com/2/tweets"
    assert fake.calls[0]["headers"]["Authorization"] == "Bearer x-user-token"
    assert fake.json() == {
        "text": "@JaneDoe Sorry! DM us.",
        "reply": {"in_reply_to_tweet_id": "1797653871634211234"},
    }
    assert reply.external_id == "1797660000000000009" and reply.delivery_status == Delivery.SENT


def test_dm_reply_goes_to_the_participant(channel, alice, django_capture_on_commit_callbacks):
    reply, fake = _reply(
        channel,
        alice,
        "direct_message.json",
        (201, {"data": {"dm_conversation_id": f"2244994945-{ME}", "dm_event_id": "1797660000000000077"}}),
        django_capture_on_commit_callbacks,
    )
    assert fake.calls[0]["url"] == "https://api.x.com/2/dm_conversations/with/2244994945/messages"
    assert fake.json() == {"text": "Sorry! DM us."}
    assert reply.external_id == "1797660000000000077"


def test_revoked_token_disables_and_rate_limit_waits(channel, alice, django_capture_on_commit_callbacks):
    reply, _ = _reply(
        channel,
        alice,
        "direct_message.json",
        (429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": "9999999999"}),
        django_capture_on_commit_callbacks,
    )
    assert reply.delivery_status == Delivery.QUEUED and "retry after 86400 s" in reply.delivery_error
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ACTIVE
    from rapport.conversations.actions import conversation_reply

    with (
        http.use_transport(FakeAPI((401, {"title": "Unauthorized"}))),
        django_capture_on_commit_callbacks(execute=True),
    ):
        again = conversation_reply(actor=alice, conversation=reply.conversation, text="Hello?")
    again.refresh_from_db()
    channel.refresh_from_db()
    assert again.delivery_status == Delivery.FAILED and channel.status == ChannelStatus.ERROR


def test_poller_stores_the_page_then_advances_since_id(channel, django_capture_on_commit_callbacks):
    fake = FakeAPI((200, json.loads(load("x", "mentions_v2.json"))), (200, {"meta": {"result_count": 0}}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        assert poller.poll(channel) == 2
        channel.refresh_from_db()
        assert poller.poll(channel) == 0
    assert "since_id" not in fake.calls[0]["url"] and f"/2/users/{ME}/mentions?" in fake.calls[0]["url"]
    assert "since_id=1797670000000000002" in fake.calls[1]["url"]
    assert channel.settings["x_since_id"] == "1797670000000000002"
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED
    assert Message.objects.count() == 2


def test_a_stale_channel_row_does_not_poll_twice(channel):
    stale = type(channel).objects.get(pk=channel.pk)
    assert http.claim_poll(channel)
    with http.use_transport(FakeAPI((500, {}))):
        assert poller.poll(stale) == 0  # lost the claim: no request made


def _hop_and_reply(channel, alice, fixture, answer, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_hop, conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_x(channel, load("x", fixture))
    conv = Message.objects.get().conversation
    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    fake = FakeAPI(answer)
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Could you send your order number?")
    reply.refresh_from_db()
    return reply, fake


def test_private_hop_on_a_mention_answers_by_dm_to_the_authors_user_id(
    channel, alice, django_capture_on_commit_callbacks
):
    reply, fake = _hop_and_reply(
        channel,
        alice,
        "tweet_create_mention.json",
        (201, {"data": {"dm_conversation_id": f"2244994945-{ME}", "dm_event_id": "1797660000000000088"}}),
        django_capture_on_commit_callbacks,
    )
    assert len(fake.calls) == 1 and fake.calls[0]["method"] == "POST"
    assert fake.calls[0]["url"] == "https://api.x.com/2/dm_conversations/with/2244994945/messages"
    assert fake.json() == {"text": "Could you send your order number?"}  # no public @handle
    assert reply.external_id == "1797660000000000088" and reply.delivery_status == Delivery.SENT


def test_private_hop_without_a_known_user_id_fails_the_reply_instead_of_posting(
    channel, alice, django_capture_on_commit_callbacks
):
    body = json.loads(load("x", "tweet_create_mention.json"))
    for tweet in body["tweet_create_events"]:
        tweet["user"]["id_str"] = "../../2/tweets"  # hostile: never goes into the URL
        tweet["user"].pop("id", None)
    with django_capture_on_commit_callbacks(execute=True):
        post_x(channel, json.dumps(body).encode())
    from rapport.conversations.actions import conversation_hop, conversation_reply

    conv = Message.objects.get().conversation
    conversation_hop(actor=alice, conversation=conv, mode="private")
    conv.refresh_from_db()
    fake = FakeAPI((201, {}))
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(actor=alice, conversation=conv, text="Hello")
    reply.refresh_from_db()
    assert fake.calls == []
    assert reply.delivery_status != Delivery.SENT and "whom to DM" in reply.delivery_error


def test_without_a_hop_a_mention_is_still_answered_in_public(
    channel, alice, django_capture_on_commit_callbacks
):
    reply, fake = _reply(
        channel,
        alice,
        "tweet_create_mention.json",
        (201, {"data": {"id": "1"}}),
        django_capture_on_commit_callbacks,
    )
    assert fake.calls[0]["url"] == "https://api.x.com/2/tweets"
