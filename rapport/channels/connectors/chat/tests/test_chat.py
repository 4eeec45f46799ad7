"""Web chat: the widget assets, origin/CORS checks, visitor tokens, rate limit, size cap,
idempotent sends, the pipeline (identity by email), agent replies reaching the visitor by
polling, and hostile text kept as text."""

import json
from pathlib import Path

import pytest
from django.core.cache import cache

from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.connectors.chat import inbound, tokens, views
from rapport.channels.models import Channel, ChannelKind, ChannelStatus, PayloadStatus, RawPayload
from rapport.conversations import actions
from rapport.conversations.ingest import process_pending
from rapport.conversations.models import Delivery, Direction, Message
from rapport.people.models import Person

KEY = "pk_test_0123456789abcdef"
SITE = "https://shop.example"
FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def chat(north):
    return Channel.objects.create(
        kind=ChannelKind.CHAT, name="Shop chat", team=north, settings={"public_key": KEY, "origins": [SITE]}
    )


def _token(client, origin=SITE):
    r = client.post(f"/chat/{KEY}/session", headers={"Origin": origin})
    assert r.status_code == 201, r.content
    return r.json()["token"]


def _send(client, token, text="Hello", client_id="c1", origin=SITE, **extra):
    body = {"token": token, "client_id": client_id, "text": text, **extra}
    return client.post(
        f"/chat/{KEY}/messages",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Origin": origin},
    )


def _poll(client, token, after=0, origin=SITE):
    return client.get(f"/chat/{KEY}/messages", {"after": after, "token": token}, headers={"Origin": origin})


def _payload(name):
    return RawPayload(pk=1, body=(FIXTURES / f"{name}.json").read_bytes())


# --- normaliser -------------------------------------------------------------------------


def test_fixture_becomes_an_anonymous_message_threaded_by_visitor(chat):
    [m] = inbound.normalise(chat, _payload("message"))
    assert m.external_id == "v_fixture_0001:lq2k3x9a" and m.thread_id == "chat:v_fixture_0001"
    assert m.author.kind == "chat" and m.text.startswith("Hello") and m.raw_ref == 1
    assert m.author.profile == {"chat_page": "https://shop.example/kettles/blue"}


def test_fixture_with_email_identifies_the_visitor(chat):
    [m] = inbound.normalise(chat, _payload("message_with_email"))
    assert (m.author.kind, m.author.value, m.author.display_name) == ("email", "jane@example.org", "Jane Doe")
    assert m.thread_id == "chat:v_fixture_0001"


def test_hostile_fixture_stays_anonymous_text(chat):
    [m] = inbound.normalise(chat, _payload("hostile"))
    assert m.author.kind == "chat" and m.html == "" and "<script>" in m.text


# --- assets -----------------------------------------------------------------------------


def test_widget_assets_are_served_without_third_party_urls(client):
    js = client.get("/chat/widget.js")
    assert js.status_code == 200 and js["Content-Type"].startswith("text/javascript")
    assert js["Cross-Origin-Resource-Policy"] == "cross-origin"
    source = js.content.decode()
    assert "innerHTML" not in source and "eval(" not in source and ".style." not in source
    assert "/chat/widget.css" in source and "localStorage" in source
    css = client.get("/chat/widget.css")
    assert css.status_code == 200 and css["Content-Type"].startswith("text/css")
    assert "url(" not in css.content.decode() and "@import" not in css.content.decode()


# --- origins, tokens, limits ------------------------------------------------------------


def test_foreign_or_missing_origin_is_refused_without_cors(chat, client):
    for headers in ({"Origin": "https://evil.example"}, {}):
        r = client.post(f"/chat/{KEY}/session", headers=headers)
        assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r
    r = client.options(f"/chat/{KEY}/messages", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert client.post("/chat/pk_unknown_000000000/session", headers={"Origin": SITE}).status_code == 404


def test_allowed_origin_gets_cors_and_preflight(chat, client):
    r = client.options(
        f"/chat/{KEY}/messages", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 204 and r["Access-Control-Allow-Origin"] == SITE
    assert "Content-Type" in r["Access-Control-Allow-Headers"]
    r = client.post(f"/chat/{KEY}/session", headers={"Origin": SITE})
    assert r["Access-Control-Allow-Origin"] == SITE and r["Vary"] == "Origin"


def test_message_from_a_foreign_origin_stores_nothing(chat, client):
    token = _token(client)
    assert _send(client, token, origin="https://evil.example").status_code == 403
    assert RawPayload.objects.count() == 0


def test_bad_or_foreign_token_is_401_and_stores_nothing(chat, client, south):
    assert _send(client, "forged.token").status_code == 401
    other = Channel.objects.create(kind=ChannelKind.CHAT, name="Other", settings={"public_key": "x" * 20})
    _, foreign = tokens.issue(other)
    assert _send(client, foreign).status_code == 401
    assert _poll(client, foreign).status_code == 401
    assert RawPayload.objects.count() == 0


def test_oversize_body_is_413_and_stores_nothing(chat, client):
    token = _token(client)
    r = _send(client, token, text="x" * (views.MAX_BODY + 10))
    assert r.status_code == 413 and RawPayload.objects.count() == 0
    r = _send(client, token, text="x" * (views.MAX_TEXT + 1))
    assert r.status_code == 400 and r.json()["errors"]["text"]


def test_rate_limit_per_visitor(chat, client):
    token = _token(client)
    codes = [_send(client, token, client_id=f"c{i}").status_code for i in range(views.SEND_PER_MINUTE + 2)]
    assert codes[: views.SEND_PER_MINUTE] == [202] * views.SEND_PER_MINUTE
    assert codes[-1] == 429
    assert RawPayload.objects.count() == views.SEND_PER_MINUTE


def test_disabled_chat_is_410(chat, client):
    token = _token(client)
    Channel.objects.filter(pk=chat.pk).update(status=ChannelStatus.DISABLED)
    assert _send(client, token).status_code == 410


# --- pipeline and polling ---------------------------------------------------------------


def test_same_client_message_id_twice_is_one_message(chat, client):
    token = _token(client)
    first, again = _send(client, token, client_id="same"), _send(client, token, client_id="same")
    assert first.status_code == again.status_code == 202 and again.json()["duplicate"] is True
    process_pending()
    assert RawPayload.objects.count() == 1 and Message.objects.count() == 1
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED


def test_visitor_identified_by_email_links_the_existing_person(chat, client, alice, north):
    from rapport.people.actions import person_create

    jane = person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@example.org")]
    )
    token = _token(client)
    _send(client, token, text="Hi there", client_id="a1")
    _send(client, token, text="It's me", client_id="a2", email="JANE@example.org", name="Jane")
    process_pending()
    anon, known = Message.objects.order_by("id")
    assert anon.person is None and known.person == jane
    assert anon.conversation_id == known.conversation_id  # one conversation per visitor
    assert known.conversation.team == north
    assert not Person.objects.filter(needs_review=True).exists()


def test_agent_reply_reaches_only_that_visitor(chat, client, alice):
    token, other = _token(client), _token(client)
    _send(client, token, text="Where is my order?", client_id="q1")
    _send(client, other, text="Other visitor", client_id="q1")
    process_pending()
    mine = Message.objects.get(text="Where is my order?")
    items = _poll(client, token).json()["items"]
    assert [(i["from"], i["client_id"], i["text"]) for i in items] == [
        ("visitor", "q1", "Where is my order?")
    ]
    reply = actions.conversation_reply(
        actor=alice, conversation=mine.conversation, text="It ships <b>today</b>"
    )
    assert _poll(client, token, after=mine.pk).json()["items"] == []  # queued, not yet deliverable
    assert actions.message_deliver(message_id=reply.pk) == "sent"
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.SENT and reply.external_id == f"chat-out-{reply.pk}"
    data = _poll(client, token, after=mine.pk).json()
    assert [(i["from"], i["text"]) for i in data["items"]] == [("agent", "It ships <b>today</b>")]
    assert data["last_id"] == reply.pk
    assert "It ships" not in json.dumps(_poll(client, other).json())
    actions.conversation_note(actor=alice, conversation=mine.conversation, text="internal only")
    assert "internal only" not in json.dumps(_poll(client, token).json())


def test_hostile_chat_text_is_escaped_for_agents(chat, client, alice_client):
    token = _token(client)
    _send(
        client,
        token,
        text='<script>alert(1)</script><img src=x onerror="alert(2)">',
        client_id="h1",
        name="<b>M</b>",
    )
    process_pending()
    message = Message.objects.get(direction=Direction.INBOUND)
    page = alice_client.get(f"/inbox/{message.conversation_id}/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_bob_never_sees_a_north_chat(chat, client, bob_client):
    token = _token(client)
    _send(client, token, text="North secret", client_id="n1")
    process_pending()
    conv = Message.objects.get().conversation
    assert bob_client.get(f"/inbox/{conv.pk}/").status_code == 404
    assert "North secret" not in bob_client.get("/inbox/?view=all").content.decode()


def test_merged_conversation_keeps_reaching_the_visitor(chat, client, alice):
    token = _token(client)
    _send(client, token, text="first", client_id="m1")
    process_pending()
    conv = Message.objects.get().conversation
    from rapport.conversations.ingest import ingest

    other = ingest(
        chat, CanonicalMessage("chat", "zz:1", Author("chat", "zz"), text="x", thread_id="chat:zz")
    )
    actions.conversation_merge(actor=alice, survivor=other.message.conversation, other=conv)
    assert [i["text"] for i in _poll(client, token).json()["items"]] == ["first"]
