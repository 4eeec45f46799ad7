"""Twilio SMS and voice: signature, SMS and MMS, status callbacks, calls logged, outbound
SMS, and one person across X (public then DM) and SMS."""

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

import pytest
from django.test import Client

from rapport.channels.connectors.meta import http
from rapport.channels.connectors.meta.testing import FakeAPI, make_channel
from rapport.channels.connectors.twilio import inbound, signing
from rapport.channels.connectors.x import signing as x_signing
from rapport.channels.models import ChannelStatus, PayloadStatus, RawPayload
from rapport.conversations.models import Call, Delivery, Message
from rapport.people.models import Identity, Person

TOKEN = "twilio-auth-token-123"  # noqa: S105 - test fixture
SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
FIXTURES = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures"


def form(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes().strip()


@pytest.fixture
def sms_channel(north):
    return make_channel("sms", north, account_sid=SID, auth_token=TOKEN, from_number="+447723456789")


@pytest.fixture
def phone_channel(north):
    return make_channel("phone", north, account_sid=SID, auth_token=TOKEN, from_number="+447723456789")


def post_twilio(path: str, body: bytes, *, token: str = TOKEN, url: str = ""):
    url = url or f"http://testserver{path}"
    signature = signing.sign(token, url, parse_qsl(body.decode(), keep_blank_values=True))
    return Client().post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def test_signature_matches_twilios_documented_example():
    # https://www.twilio.com/docs/usage/security#validating-requests
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    data = url + "".join(k + v for k, v in sorted(params))
    expected = base64.b64encode(hmac.new(b"12345", data.encode(), hashlib.sha1).digest()).decode()
    assert signing.sign("12345", url, params) == expected
    signing.verify("12345", url, params, expected)


def test_inbound_sms_is_stored_once_and_normalised(sms_channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms"))
        again = post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms"))
    assert first.status_code == 200 and first["Content-Type"] == "text/xml"
    assert b"<Response></Response>" in first.content and again.status_code == 200
    assert RawPayload.objects.count() == 1
    msg = Message.objects.get()
    assert msg.external_id == "SM4c9e1b2f0a6d8e3b7c5a9f1d2e4b6a8c"
    assert msg.text == "Hi it's Jane again - any news on order 4471?"
    assert msg.person.identities.get().value == "+447911123456"


def test_mms_keeps_media_urls(sms_channel):
    payload = RawPayload(channel=sms_channel, body=form("mms"), headers={"X-Rapport-Event": "sms"})
    [m] = inbound.normalise(sms_channel, payload)
    assert m.attachments[0].content_type == "image/jpeg" and "/Media/ME0123" in m.attachments[0].url


@pytest.mark.parametrize("token,url", [("wrong-token", ""), (TOKEN, "http://testserver/hooks/sms/999/")])
def test_bad_signature_is_403_and_nothing_stored(sms_channel, token, url):
    response = post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms"), token=token, url=url)
    assert response.status_code == 403
    assert not RawPayload.objects.exists()


def test_tampered_param_is_rejected(sms_channel):
    body = form("sms")
    signature = signing.sign(
        TOKEN, f"http://testserver/hooks/sms/{sms_channel.pk}/", parse_qsl(body.decode())
    )
    response = Client().post(
        f"/hooks/sms/{sms_channel.pk}/",
        data=body.replace(b"4471", b"9999"),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403 and not RawPayload.objects.exists()


def test_public_url_setting_is_what_gets_verified(sms_channel):
    sms_channel.settings = {"public_url": "https://crm.example.com"}
    sms_channel.save()
    path = f"/hooks/sms/{sms_channel.pk}/"
    assert post_twilio(path, form("sms"), url=f"https://crm.example.com{path}").status_code == 200
    assert post_twilio(path, form("mms")).status_code == 403


def test_unknown_event_header_is_a_dead_letter(sms_channel):
    with pytest.raises(inbound.UnknownEvent):
        inbound.normalise(sms_channel, RawPayload(channel=sms_channel, body=form("sms"), headers={}))


def _reply(sms_channel, alice, answer, django_capture_on_commit_callbacks):
    from rapport.conversations.actions import conversation_reply

    with django_capture_on_commit_callbacks(execute=True):
        post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms"))
    fake = FakeAPI(answer)
    with http.use_transport(fake), django_capture_on_commit_callbacks(execute=True):
        reply = conversation_reply(
            actor=alice, conversation=Message.objects.get().conversation, text="Shipped today!"
        )
    reply.refresh_from_db()
    return reply, fake


def test_outbound_sms_shape_and_status_callbacks(sms_channel, alice, django_capture_on_commit_callbacks):
    reply, fake = _reply(
        sms_channel,
        alice,
        (201, {"sid": "SMout0000000000000000000000000001", "status": "queued"}),
        django_capture_on_commit_callbacks,
    )
    call = fake.calls[0]
    assert call["url"] == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert call["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert dict(parse_qsl(call["body"].decode())) == {
        "To": "+447911123456",
        "Body": "Shipped today!",
        "From": "+447723456789",
    }
    assert reply.external_id == "SMout0000000000000000000000000001" and reply.delivery_status == Delivery.SENT
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post_twilio(f"/hooks/sms/{sms_channel.pk}/status/", form("sms_status_delivered")).status_code
            == 200
        )
        assert (
            post_twilio(f"/hooks/sms/{sms_channel.pk}/status/", form("sms_status_undelivered")).status_code
            == 200
        )
    reply.refresh_from_db()
    assert reply.delivery_status == Delivery.FAILED and "30003" in reply.delivery_error
    assert Message.objects.count() == 2
    assert set(RawPayload.objects.values_list("status", flat=True)) == {PayloadStatus.PROCESSED}


def test_revoked_credentials_disable_and_throttling_retries(
    sms_channel, alice, django_capture_on_commit_callbacks
):
    reply, _ = _reply(
        sms_channel, alice, (429, {"code": 20429}, {"Retry-After": "5"}), django_capture_on_commit_callbacks
    )
    assert reply.delivery_status == Delivery.QUEUED
    from rapport.conversations.actions import conversation_reply

    with (
        http.use_transport(FakeAPI((401, {"code": 20003, "message": "Authenticate"}))),
        django_capture_on_commit_callbacks(execute=True),
    ):
        failed = conversation_reply(actor=alice, conversation=reply.conversation, text="again")
    failed.refresh_from_db()
    sms_channel.refresh_from_db()
    assert failed.delivery_status == Delivery.FAILED and sms_channel.status == ChannelStatus.ERROR


def test_incoming_call_answers_twiml_that_records_or_forwards(phone_channel):
    response = post_twilio(f"/hooks/phone/{phone_channel.pk}/", form("call_incoming"))
    assert response.status_code == 200 and b"<Record" in response.content and b"<Say>" in response.content
    phone_channel.settings = {"forward_to": "+44 20 7946 0958"}
    phone_channel.save()
    response = post_twilio(f"/hooks/phone/{phone_channel.pk}/", form("call_incoming"))
    assert (
        b'<Dial record="record-from-answer"' in response.content
        and b"<Number>+442079460958</Number>" in response.content
    )
    assert RawPayload.objects.count() == 1  # the same ringing call retried is one row
    assert not Message.objects.exists()


def test_finished_call_is_logged_in_the_callers_conversation(
    phone_channel, sms_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms"))
        post_twilio(f"/hooks/phone/{phone_channel.pk}/status/", form("call_status_completed"))
        post_twilio(f"/hooks/phone/{phone_channel.pk}/status/", form("call_status_completed"))
    call = Call.objects.get()
    assert (call.direction, call.number, call.duration_s, call.outcome) == (
        "inbound",
        "+447911123456",
        125,
        "answered",
    )
    sms = Message.objects.get(channel=sms_channel)
    assert call.message.person == sms.person
    assert call.message.text == "Inbound call: answered, 2 min 05 s"


def test_busy_outbound_call_outcome(phone_channel):
    payload = RawPayload(
        channel=phone_channel, body=form("call_status_busy"), headers={"X-Rapport-Event": "call.status"}
    )
    [m] = inbound.normalise(phone_channel, payload)
    assert m.author.value == "+447911123456" and "busy" in m.text
    assert inbound.call_outcome(inbound.params(payload)) == ("outbound", "+447911123456", "busy", 0)


def test_public_x_mention_then_x_dm_then_sms_is_one_person(
    north, alice, sms_channel, django_capture_on_commit_callbacks
):
    from rapport.channels.connectors.meta.testing import load
    from rapport.conversations.selectors import conversations_visible

    person = Person.objects.create(first_name="Jane", last_name="Doe", owner=alice, team=north)
    Identity.objects.create(person=person, kind="x", value="janedoe")
    Identity.objects.create(person=person, kind="phone", value="+447911123456")
    x_channel = make_channel(
        "x", north, consumer_secret="cs", access_token="t", user_id="1480000000000000001"
    )

    def post_x(name):
        body = load("x", name)
        return Client().post(
            f"/hooks/x/{x_channel.pk}/",
            data=body,
            content_type="application/json",
            headers={"X-Twitter-Webhooks-Signature": x_signing.sign("cs", body)},
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert post_x("tweet_create_mention.json").status_code == 200
        assert post_x("direct_message.json").status_code == 200
        assert post_twilio(f"/hooks/sms/{sms_channel.pk}/", form("sms")).status_code == 200
    messages = list(Message.objects.order_by("id"))
    assert [m.channel.kind for m in messages] == ["x", "x", "sms"]
    assert {m.person_id for m in messages} == {person.pk}
    assert Person.objects.count() == 1
    assert messages[0].conversation == messages[1].conversation  # the DM continues the mention
    conversations = set(person.conversations.values_list("id", flat=True))
    assert conversations == {m.conversation_id for m in messages}
    visible = set(conversations_visible(alice).filter(person=person).values_list("id", flat=True))
    assert visible == conversations


def _call_status_payload(phone_channel):
    # Stored as the webhook stores it, its task never run (queue down, worker killed).
    response = post_twilio(f"/hooks/phone/{phone_channel.pk}/status/", form("call_status_completed"))
    assert response.status_code == 200
    payload = RawPayload.objects.get()
    assert payload.status == PayloadStatus.RECEIVED and not Message.objects.exists()
    return payload


def test_the_recovery_sweep_logs_the_call_row_too(phone_channel):
    from rapport.conversations.ingest import process_pending

    _call_status_payload(phone_channel)
    assert process_pending() == 1
    call = Call.objects.get()
    assert (call.direction, call.number, call.duration_s, call.outcome) == (
        "inbound",
        "+447911123456",
        125,
        "answered",
    )
    assert call.message == Message.objects.get() and call.conversation == call.message.conversation
    assert RawPayload.objects.get().status == PayloadStatus.PROCESSED


def test_processing_a_call_payload_twice_gives_one_call_row(phone_channel):
    from rapport.conversations.ingest import process_batch, process_payload

    payload = _call_status_payload(phone_channel)
    process_payload(payload.pk)
    for again in (lambda: process_payload(payload.pk), lambda: process_batch(ids=[payload.pk])):
        RawPayload.objects.filter(pk=payload.pk).update(status=PayloadStatus.RECEIVED)
        again()
    assert Message.objects.count() == 1 and Call.objects.count() == 1


def test_reprocessing_repairs_a_call_row_missing_from_an_older_run(phone_channel):
    from rapport.conversations.ingest import process_batch

    payload = _call_status_payload(phone_channel)
    process_batch(ids=[payload.pk])
    Call.objects.all().delete()  # as the old separate task left it when the sweep ran first
    RawPayload.objects.filter(pk=payload.pk).update(status=PayloadStatus.RECEIVED)
    process_batch(ids=[payload.pk])
    assert Call.objects.get().message == Message.objects.get()


def test_a_failing_hook_rolls_back_the_message_with_it(phone_channel, monkeypatch):
    from rapport.conversations.ingest import process_payload

    payload = _call_status_payload(phone_channel)

    def broken(*args):
        raise RuntimeError("hook crashed")

    monkeypatch.setattr(inbound, "after_ingest", broken)
    with pytest.raises(RuntimeError):
        process_payload(payload.pk)
    assert not Message.objects.exists() and not Call.objects.exists()
    assert RawPayload.objects.get().status == PayloadStatus.RECEIVED
