"""Canned answers, @mentions, notices, bulk actions, merge/undo, channel hops, routing and SLA
admin: each through the web UI, with Bob (South) never reaching North conversations."""

import pytest
from django.core import mail

from conftest import login
from rapport.audit.models import AuditEntry
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.models import Channel, ChannelKind
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from rapport.conversations.models import (
    CannedAnswer,
    Conversation,
    Direction,
    Message,
    Notification,
    Priority,
    RoutingRule,
    SlaPolicy,
    Status,
)
from rapport.people.models import Identity


@pytest.fixture
def channel(north):
    return webhook_channel(north)


def _conv(channel, ext, value="jane@example.org", text="Help", **kw):
    return ingest(
        channel, CanonicalMessage("webhook", ext, Author("email", value, "Jane Doe"), text=text, **kw)
    ).message.conversation


@pytest.fixture
def conv(channel):
    return _conv(channel, "m1")


# --- canned answers ---------------------------------------------------------------------


def test_canned_answer_fills_placeholders_as_escaped_text(conv, alice, alice_client, north):
    r = alice_client.post(
        "/inbox/canned/",
        {
            "title": "thanks",
            "body": "Hi {{first_name}}, <script>x()</script> {{agent_first_name}}",
            "team": north.pk,
        },
    )
    assert r.status_code == 302
    data = alice_client.get(f"/inbox/{conv.pk}/canned.json?q=tha").json()
    assert data["items"][0]["text"] == f"Hi Jane, <script>x()</script> {alice.first_name or alice.username}"
    page = alice_client.get("/inbox/canned/").content.decode()
    assert "<script>x()" not in page and "&lt;script&gt;x()" in page


def test_template_syntax_in_a_person_name_is_not_evaluated(channel, alice_client, alice):
    conv = _conv(channel, "m9", value="evil@example.org")
    conv.person.first_name = "{{agent_name}}{% now 'Y' %}"
    conv.person.save()
    CannedAnswer.objects.create(title="hi", body="Dear {{first_name}}", owner=alice)
    text = alice_client.get(f"/inbox/{conv.pk}/canned.json?q=hi").json()["items"][0]["text"]
    assert text == "Dear {{agent_name}}{% now 'Y' %}"


def test_unknown_placeholder_is_a_field_error(alice_client):
    r = alice_client.post("/inbox/canned/", {"title": "x", "body": "Hi {{password}}"})
    assert r.status_code == 400 and "Unknown placeholder" in r.content.decode()
    assert CannedAnswer.objects.count() == 0


def test_personal_and_team_answers_are_not_visible_to_bob(alice, bob_client, north, conv):
    mine = CannedAnswer.objects.create(title="private", body="p", owner=alice)
    shared = CannedAnswer.objects.create(title="north", body="n", owner=alice, team=north)
    page = bob_client.get("/inbox/canned/").content.decode()
    assert "private" not in page and "/north" not in page
    assert bob_client.get(f"/inbox/canned/{mine.pk}/").status_code == 404
    assert bob_client.post(f"/inbox/canned/{shared.pk}/", {"delete": "1"}).status_code == 404
    assert bob_client.get(f"/inbox/{conv.pk}/canned.json").status_code == 404
    assert CannedAnswer.objects.count() == 2


def test_bob_cannot_share_with_north(bob_client, north):
    r = bob_client.post("/inbox/canned/", {"title": "x", "body": "y", "team": north.pk})
    assert r.status_code == 400 and not CannedAnswer.objects.exists()


# --- mentions and notices ---------------------------------------------------------------


def test_mention_notifies_a_colleague_who_can_see_it(
    conv, alice_client, carol, bob, django_capture_on_commit_callbacks
):
    carol.email, bob.email = "carol@example.org", "bob@example.org"
    carol.save()
    bob.save()
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            f"/inbox/{conv.pk}/reply/",
            {"text": f"@{carol.username} and @{bob.username}, see jane@example.org", "kind": "note"},
        )
    assert list(Notification.objects.filter(kind="mention").values_list("user__username", flat=True)) == [
        carol.username
    ]
    assert [m.to for m in mail.outbox] == [["carol@example.org"]]
    page = alice_client.get(f"/inbox/{conv.pk}/").content.decode()
    assert (
        f'class="mention" href="/inbox/?view=all&amp;status=any&amp;assignee={carol.pk}">@{carol.username}</a>'
        in page
    )
    notices = login(carol).get("/inbox/notifications/").content.decode()
    assert "mentioned you" in notices


def test_hostile_note_text_is_escaped(conv, alice_client, carol):
    alice_client.post(
        f"/inbox/{conv.pk}/reply/",
        {"text": f'<img src=x onerror=alert(1)> @{carol.username}"><b>', "kind": "note"},
    )
    page = alice_client.get(f"/inbox/{conv.pk}/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&quot;&gt;&lt;b&gt;" in page


def test_notices_of_conversations_you_cannot_see_are_hidden(conv, bob, bob_client):
    Notification.objects.create(user=bob, conversation=conv, kind="x", text="secret North thing")
    assert "secret North thing" not in bob_client.get("/inbox/notifications/").content.decode()
    bob_client.post("/inbox/notifications/")
    assert Notification.objects.get().read_at is not None


# --- bulk -------------------------------------------------------------------------------


def test_bulk_close_changes_only_rows_the_actor_may_change(channel, alice_client, bob_client, south):
    a = _conv(channel, "a1", value="a@example.org")
    b = _conv(channel, "b1", value="b@example.org")
    s = _conv(webhook_channel(south), "s1", value="s@example.org")
    r = bob_client.post("/inbox/bulk/", {"ids": [a.pk, b.pk, s.pk], "action": "close"})
    assert r.status_code == 302
    assert set(Conversation.objects.filter(status=Status.CLOSED).values_list("pk", flat=True)) == {s.pk}
    alice_client.post("/inbox/bulk/", {"ids": [a.pk, b.pk, s.pk], "action": "priority", "value": "high"})
    assert set(Conversation.objects.filter(priority=Priority.HIGH).values_list("pk", flat=True)) == {
        a.pk,
        b.pk,
    }
    alice_client.post("/inbox/bulk/", {"ids": [a.pk, s.pk], "action": "tag", "value": "refund"})
    assert list(a.tags.values_list("name", flat=True)) == ["refund"] and not s.tags.exists()


def test_bulk_assign_and_bad_action(channel, alice, alice_client):
    a = _conv(channel, "a1", value="a@example.org")
    alice_client.post("/inbox/bulk/", {"ids": [a.pk], "action": "assign", "value": alice.pk})
    a.refresh_from_db()
    assert a.assignee == alice
    r = alice_client.post("/inbox/bulk/", {"ids": [a.pk], "action": "drop"}, follow=True)
    assert "Unknown bulk action" in r.content.decode()


# --- merge and undo ---------------------------------------------------------------------


def test_merge_moves_everything_and_undo_restores_it(channel, alice_client):
    one = _conv(channel, "x1")
    Conversation.objects.filter(pk=one.pk).update(status=Status.CLOSED)
    two = _conv(channel, "x2", text="Again")
    assert one.pk != two.pk
    alice_client.post(
        f"/inbox/{two.pk}/call/", {"direction": "outbound", "outcome": "answered", "duration_min": 1}
    )
    moved = set(two.messages.values_list("pk", flat=True))
    r = alice_client.post(f"/inbox/{one.pk}/merge/", {"other": two.pk})
    assert r.status_code == 302
    two.refresh_from_db()
    one.refresh_from_db()
    assert two.status == Status.CLOSED and two.merged_into_id == one.pk and one.status == Status.OPEN
    assert moved <= set(one.messages.values_list("pk", flat=True)) and one.calls.count() == 1
    entry = AuditEntry.objects.get(action="merge", object_id=two.pk)
    assert set(entry.changes["messages"]) == moved
    assert "merged into" in alice_client.get(f"/inbox/{two.pk}/").content.decode()
    alice_client.post(f"/inbox/{two.pk}/unmerge/")
    two.refresh_from_db()
    assert two.merged_into_id is None and two.status != Status.CLOSED
    assert set(two.messages.values_list("pk", flat=True)) == moved and two.calls.count() == 1
    assert one.messages.count() == 1


def test_merge_refuses_other_people_and_bob(channel, alice_client, bob_client):
    one = _conv(channel, "x1")
    other = _conv(channel, "y1", value="someone@example.org")
    r = alice_client.post(f"/inbox/{one.pk}/merge/", {"other": other.pk}, follow=True)
    assert "different people" in r.content.decode()
    assert bob_client.post(f"/inbox/{one.pk}/merge/", {"other": other.pk}).status_code == 404
    assert not Conversation.objects.filter(merged_into__isnull=False).exists()


# --- channel hops -----------------------------------------------------------------------


def test_continue_by_email_switches_the_reply_channel_and_logs_the_hop(channel, north, alice_client):
    conv = _conv(channel, "h1")
    email = Channel.objects.create(kind=ChannelKind.EMAIL, name="Support mail", team=north)
    r = alice_client.post(f"/inbox/{conv.pk}/hop/", {"mode": "email", "address": "jane@example.org"})
    assert r.status_code == 302
    conv.refresh_from_db()
    assert conv.reply_channel == email and conv.reply_to == "jane@example.org"
    assert email in conv.channels.all()
    hop = Message.objects.get(author_kind="hop")
    assert hop.direction == Direction.NOTE and hop.text.startswith("Moved from")
    r = alice_client.post(
        f"/inbox/{conv.pk}/hop/", {"mode": "email", "address": "stranger@example.org"}, follow=True
    )
    assert "email addresses" in r.content.decode()


def test_continue_as_private_message_on_x(north, alice_client):
    x = Channel.objects.create(kind=ChannelKind.X, name="X", team=north)
    conv = ingest(
        x, CanonicalMessage("x", "t1", Author("x", "jane", "Jane"), text="@shop broken", is_public=True)
    ).message.conversation
    alice_client.post(f"/inbox/{conv.pk}/hop/", {"mode": "private"})
    conv.refresh_from_db()
    assert conv.reply_mode == "private"
    assert Message.objects.get(author_kind="hop").text == "Moved from X / Twitter mention to X / Twitter DM."
    assert "Moved from X / Twitter mention" in alice_client.get(f"/inbox/{conv.pk}/").content.decode()


def test_bob_cannot_hop_a_north_conversation(conv, bob_client):
    assert bob_client.post(f"/inbox/{conv.pk}/hop/", {"mode": "private"}).status_code == 404
    assert not Identity.objects.filter(value="x").exists()


# --- routing and SLA admin --------------------------------------------------------------


def test_routing_rules_admin_create_validate_reorder(admin, alice_client):
    client = login(admin)
    assert alice_client.get("/settings/routing/").status_code == 404
    r = client.post(
        "/settings/routing/new/", {"name": "", "assign_mode": "user", "channel_kinds": ["pigeon"]}
    )
    assert r.status_code == 400 and RoutingRule.objects.count() == 0
    body = r.content.decode()
    assert "1 to 100 characters" in body and "Choose among" in body
    r = client.post("/settings/routing/new/", {"name": "VIP", "assign_mode": "user"})
    assert r.status_code == 400 and "Choose whom to assign to" in r.content.decode()
    for name in ("first", "second"):
        r = client.post(
            "/settings/routing/new/",
            {"name": name, "words": "refund, broken", "set_priority": "high", "stop": "on"},
        )
        assert r.status_code == 302
    second = RoutingRule.objects.get(name="second")
    assert second.words == ["refund", "broken"]
    client.post(f"/settings/routing/{second.pk}/move/", {"direction": "up"})
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["second", "first"]
    assert "<script>" not in client.get("/settings/routing/").content.decode()


def test_sla_admin_saves_and_validates(admin, alice_client):
    client = login(admin)
    assert alice_client.post("/settings/sla/", {"priority": "high"}).status_code == 404
    r = client.post(
        "/settings/sla/",
        {
            "priority": "high",
            "first_response_minutes": "90",
            "resolution_minutes": "30",
            "warn_before_minutes": "5",
        },
    )
    assert r.status_code == 400 and "At least the first-response time" in r.content.decode()
    r = client.post(
        "/settings/sla/",
        {
            "priority": "high",
            "first_response_minutes": "45",
            "resolution_minutes": "300",
            "warn_before_minutes": "5",
        },
    )
    assert r.status_code == 302
    assert SlaPolicy.objects.get(priority="high").first_response_minutes == 45
