"""Agent screens: access by team, reply vs note, controls, call log, polling endpoint."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import login
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from rapport.conversations.models import Call, Conversation, Delivery, Direction, Message, Status


@pytest.fixture
def channel(north):
    return webhook_channel(north)


@pytest.fixture
def conv(channel):
    return ingest(
        channel, CanonicalMessage("webhook", "m1", Author("email", "jane@example.org", "Jane"), text="Help")
    ).message.conversation


def test_bob_cannot_see_a_north_conversation(conv, bob_client):
    assert bob_client.get(f"/inbox/{conv.pk}/").status_code == 404
    assert bob_client.get(f"/inbox/{conv.pk}/messages.json").status_code == 404
    assert bob_client.post(f"/inbox/{conv.pk}/reply/", {"text": "hi", "kind": "note"}).status_code == 404
    assert bob_client.post(f"/inbox/{conv.pk}/status/", {"status": "closed"}).status_code == 404
    conv.refresh_from_db()
    assert conv.status == Status.NEW and conv.messages.count() == 1
    page = bob_client.get("/inbox/?view=all").content.decode()
    assert "Help" not in page


def test_assignee_outside_the_team_sees_it(conv, bob, bob_client):
    Conversation.objects.filter(pk=conv.pk).update(assignee=bob)
    assert bob_client.get(f"/inbox/{conv.pk}/").status_code == 200
    assert "Help" in bob_client.get("/inbox/?view=mine").content.decode()


def test_team_member_and_admin_see_it(conv, alice_client, admin):
    assert alice_client.get(f"/inbox/{conv.pk}/").status_code == 200
    assert login(admin).get(f"/inbox/{conv.pk}/").status_code == 200
    for view in ("unassigned", "teams", "all"):
        assert "Help" in alice_client.get(f"/inbox/?view={view}").content.decode(), view
    assert "Help" not in alice_client.get("/inbox/?view=mine").content.decode()


def test_read_only_user_sees_but_cannot_act(conv, reader):
    client = login(reader)
    page = client.get(f"/inbox/{conv.pk}/").content.decode()
    assert "Send reply" not in page
    assert client.post(f"/inbox/{conv.pk}/reply/", {"text": "x", "kind": "note"}).status_code == 404
    assert conv.messages.count() == 1


def test_note_is_stored_and_not_queued(conv, alice_client):
    alice_client.post(f"/inbox/{conv.pk}/reply/", {"text": "Check the warranty", "kind": "note"})
    note = Message.objects.get(direction=Direction.NOTE)
    assert note.delivery_status == Delivery.NONE and note.text == "Check the warranty"


def test_reply_goes_out_on_the_conversation_channel(conv, alice, alice_client, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "rapport.channels.connectors.webhook.transport.send",
        lambda channel, message: sent.append(message.text) or "x-1",
    )
    response = alice_client.post(f"/inbox/{conv.pk}/reply/", {"text": "We will replace it", "kind": "reply"})
    assert response.status_code == 302
    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.channel_id == conv.reply_channel_id and reply.author_user == alice
    conv.refresh_from_db()
    assert conv.status == Status.OPEN and conv.assignee == alice  # taking it by answering


def test_empty_reply_is_refused_with_a_message(conv, alice_client):
    response = alice_client.post(f"/inbox/{conv.pk}/reply/", {"text": "   ", "kind": "reply"}, follow=True)
    assert "Write something first." in response.content.decode()
    assert conv.messages.count() == 1


def test_assign_status_priority_controls(conv, alice, carol, alice_client):
    alice_client.post(f"/inbox/{conv.pk}/assign/", {"assignee": carol.pk, "version": conv.version})
    conv.refresh_from_db()
    assert conv.assignee == carol
    alice_client.post(f"/inbox/{conv.pk}/status/", {"status": "resolved"})
    alice_client.post(f"/inbox/{conv.pk}/priority/", {"priority": "urgent"})
    conv.refresh_from_db()
    assert conv.status == Status.RESOLVED and conv.resolved_at and conv.priority == "urgent"


def test_stale_version_is_a_conflict_not_an_overwrite(conv, carol, alice_client):
    old = conv.version
    alice_client.post(f"/inbox/{conv.pk}/status/", {"status": "open", "version": old})
    response = alice_client.post(
        f"/inbox/{conv.pk}/assign/", {"assignee": carol.pk, "version": old}, follow=True
    )
    assert "Someone else changed" in response.content.decode()
    conv.refresh_from_db()
    assert conv.assignee is None


def test_cannot_assign_to_someone_of_another_team(conv, bob, alice_client):
    alice_client.post(f"/inbox/{conv.pk}/assign/", {"assignee": bob.pk})
    conv.refresh_from_db()
    assert conv.assignee is None


def test_an_assignee_outside_the_agents_teams_is_shown_and_kept(conv, alice, bob, alice_client):
    """Assigned to Bob (South) on a North conversation: Alice's form shows Bob, not
    "Unassigned", and submitting it unchanged keeps him without an error."""
    Conversation.objects.filter(pk=conv.pk).update(assignee=bob)
    page = alice_client.get(f"/inbox/{conv.pk}/").content.decode()
    assert f'<option value="{bob.pk}" selected>{bob}</option>' in page
    response = alice_client.post(f"/inbox/{conv.pk}/assign/", {"assignee": bob.pk}, follow=True)
    assert "You can assign to yourself" not in response.content.decode()
    conv.refresh_from_db()
    assert conv.assignee == bob


def test_call_log_joins_the_history(conv, alice_client):
    alice_client.post(
        f"/inbox/{conv.pk}/call/",
        {
            "direction": "outbound",
            "outcome": "answered",
            "number": "+44 20 7946 0958",
            "duration_min": "3.5",
            "notes": "Agreed a refund",
        },
    )
    call = Call.objects.get()
    assert call.duration_s == 210 and call.message.conversation == conv
    conv.refresh_from_db()
    assert conv.first_response_at is not None
    bad = alice_client.post(
        f"/inbox/{conv.pk}/call/",
        {"direction": "sideways", "outcome": "answered", "duration_min": "x"},
        follow=True,
    )
    assert bad.status_code == 200 and Call.objects.count() == 1


def test_poll_returns_only_new_messages_rendered_safely(conv, channel, alice_client):
    first_id = conv.messages.get().pk
    data = alice_client.get(f"/inbox/{conv.pk}/messages.json?after={first_id}").json()
    assert data["count"] == 0 and data["last_id"] == first_id
    ingest(
        channel,
        CanonicalMessage(
            "webhook", "m2", Author("email", "jane@example.org"), html="<b>more</b><script>x()</script>"
        ),
    )
    data = alice_client.get(f"/inbox/{conv.pk}/messages.json?after={first_id}").json()
    assert data["count"] == 1 and "<b>more</b>" in data["html"] and "<script" not in data["html"]
    assert alice_client.get(f"/inbox/{conv.pk}/messages.json?after=junk").status_code == 200


def test_conversation_page_links_person_and_shows_tel_link(conv, alice, alice_client):
    from rapport.people.actions import identity_add

    identity_add(actor=alice, person=conv.person, kind="phone", value="+44 20 7946 0958")
    page = alice_client.get(f"/inbox/{conv.pk}/").content.decode()
    assert f'href="/people/{conv.person_id}/"' in page
    assert 'href="tel:+442079460958"' in page
    assert "conversation.js" in page and "<script>" not in page.split("</head>")[1]


def test_inbox_bad_input_is_a_clear_400(alice_client):
    assert alice_client.get("/inbox/?view=nope").status_code == 400
    assert alice_client.get("/inbox/?cursor=%%%").status_code == 400
    assert alice_client.get("/inbox/?status=weird").status_code == 400


def test_inbox_list_query_count_does_not_grow_with_rows(channel, alice_client):
    for i in range(3):
        ingest(channel, CanonicalMessage("webhook", f"q{i}", Author("email", f"p{i}@example.net"), text="x"))
    with CaptureQueriesContext(connection) as few:
        alice_client.get("/inbox/?view=all")
    for i in range(3, 15):
        ingest(channel, CanonicalMessage("webhook", f"q{i}", Author("email", f"p{i}@example.net"), text="x"))
    with CaptureQueriesContext(connection) as many:
        alice_client.get("/inbox/?view=all")
    assert len(many) == len(few)


def test_dead_letters_are_admin_only_and_replayable(
    channel, admin, alice_client, django_capture_on_commit_callbacks
):
    import json

    from rapport.channels.actions import payload_store
    from rapport.channels.models import PayloadStatus
    from rapport.conversations.ingest import process_payload

    payload, _ = payload_store(channel=channel, body=b"{broken", headers={})
    process_payload(payload.pk)
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.DEAD
    assert alice_client.get("/settings/channels/dead-letters/").status_code == 404
    assert alice_client.post(f"/settings/channels/dead-letters/{payload.pk}/replay/").status_code == 404
    admin_client = login(admin)
    page = admin_client.get("/settings/channels/dead-letters/").content.decode()
    assert "not UTF-8 JSON" in page
    assert "{broken" in admin_client.get(f"/settings/channels/dead-letters/{payload.pk}/").content.decode()
    # The connector is "fixed": the body is now readable; replay gets the message through.
    from rapport.channels.models import RawPayload

    RawPayload.objects.filter(pk=payload.pk).update(
        body=json.dumps(
            {
                "event": "message",
                "message": {
                    "id": "late-1",
                    "text": "hi",
                    "author": {"kind": "email", "value": "late@example.org"},
                },
            }
        ).encode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/settings/channels/dead-letters/{payload.pk}/replay/")
    payload.refresh_from_db()
    assert payload.status == PayloadStatus.PROCESSED and payload.replayed_by == admin
    assert Message.objects.filter(external_id="late-1").count() == 1


def test_private_organisation_name_is_hidden_on_the_conversation_page(alice, bob, south):
    """A person everyone may see can work at an organisation only its owner may see: the
    conversation page names the organisation only to those who may see it (as the people list)."""
    from conftest import login
    from rapport.conversations.models import Conversation
    from rapport.people.actions import organisation_create, person_create

    org = organisation_create(actor=alice, name="Hidden Holdings", visibility="private")
    person = person_create(
        actor=alice, first_name="Pat", last_name="Open", organisation=org, visibility="everyone"
    )
    conv = Conversation.objects.create(subject="Hello", person=person, team=south, assignee=alice)
    assert "Hidden Holdings" in login(alice).get(f"/inbox/{conv.pk}/").content.decode()
    page = login(bob).get(f"/inbox/{conv.pk}/")  # South's conversation: Bob works it
    assert page.status_code == 200 and "Pat Open" in page.content.decode()
    assert "Hidden Holdings" not in page.content.decode()


def test_the_inbox_list_names_a_customer_only_to_those_who_may_see_them(alice, bob, south, admin):
    """A conversation of South's (Bob works it) with a person private to Alice: the list shows
    Bob the conversation but not the private record's name, as the API and the conversation
    page do; Alice and admins see the name."""
    from conftest import login
    from rapport.people.actions import person_create

    person = person_create(actor=alice, first_name="Priya", last_name="Private", visibility="private")
    Conversation.objects.create(subject="Quote please", person=person, team=south)
    for_bob = login(bob).get("/inbox/?view=all").content.decode()
    assert "Quote please" in for_bob and "Priya" not in for_bob
    assert "A person you cannot see" in for_bob
    assert "Priya Private" in login(admin).get("/inbox/?view=all").content.decode()
    person.visibility = "everyone"
    person.save()
    assert "Priya Private" in login(bob).get("/inbox/?view=all").content.decode()
