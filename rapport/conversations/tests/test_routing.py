"""Routing rules, the account-owner default, round-robin, SLA deadlines and the SLA check."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from rapport.conversations.models import (
    AssignMode,
    Conversation,
    Direction,
    Message,
    Notification,
    Priority,
    RoutingRule,
    SlaPolicy,
    SlaState,
)
from rapport.conversations.routing import sla_check
from rapport.people.actions import organisation_create, person_create


@pytest.fixture
def channel(north):
    return webhook_channel(north)


def cm(ext, value="jane@example.org", text="Hello"):
    return CanonicalMessage("webhook", ext, Author("email", value, "Jane Doe"), text=text)


def test_new_conversation_goes_to_the_account_owner(channel, bob):
    person_create(actor=bob, first_name="Jane", identities=[("email", "jane@example.org")])
    conv = ingest(channel, cm("m1")).message.conversation
    assert conv.assignee == bob
    assert Notification.objects.filter(user=bob, kind="assigned", conversation=conv).exists()


def test_organisation_owner_is_the_account_owner_when_the_person_has_none_of_their_own(channel, bob):
    org = organisation_create(actor=bob, name="Acme", domains=["acme.test"])
    conv = ingest(channel, cm("m1", value="someone@acme.test")).message.conversation
    assert conv.person.owner.username == "rapport-bot"  # created by the inbox
    assert conv.organisation == org
    assert conv.assignee == bob


def test_without_owner_it_stays_unassigned_in_the_channel_team(channel, north):
    conv = ingest(channel, cm("m1", value="stranger@example.net")).message.conversation
    assert conv.assignee is None and conv.team == north


def test_round_robin_rotates_through_active_team_members(channel, north, alice, carol, reader):
    inactive = User.objects.create_user(username="gone", password="x" * 12, role=Role.SALES, is_active=False)
    inactive.teams.add(north)
    RoutingRule.objects.create(name="North desk", assign_mode=AssignMode.ROUND_ROBIN, assign_team=north)
    assignees = [
        ingest(channel, cm(f"m{i}", value=f"c{i}@example.net")).message.conversation.assignee
        for i in range(4)
    ]
    assert assignees == [alice, carol, alice, carol]  # never the read-only user or the inactive one


def test_fewest_open_picks_the_least_loaded_member(channel, north, alice, carol):
    RoutingRule.objects.create(name="Balance", assign_mode=AssignMode.FEWEST_OPEN, assign_team=north)
    Conversation.objects.create(subject="busy", assignee=alice, team=north)
    assert ingest(channel, cm("m1", value="a@example.net")).message.conversation.assignee == carol


def test_rule_conditions_words_and_vip_and_actions(channel, alice, carol):
    person_create(actor=alice, first_name="Vera", identities=[("email", "vip@example.org")], is_vip=True)
    RoutingRule.objects.create(
        name="VIP refunds",
        position=1,
        words=["refund"],
        person_vip=True,
        assign_mode=AssignMode.USER,
        assign_user=carol,
        set_priority=Priority.HIGH,
        add_tags=["refund"],
        auto_reply="We got it.",
    )
    plain = ingest(channel, cm("m1", value="vip@example.org", text="hello there")).message.conversation
    assert plain.assignee == alice and plain.priority == Priority.NORMAL  # no match: account owner
    conv = ingest(channel, cm("m2", value="vip@example.org", text="I want a REFUND")).message.conversation
    assert conv == plain  # same open conversation: assignment is kept, priority rises
    assert conv.assignee == alice and conv.priority == Priority.HIGH
    assert list(conv.tags.values_list("name", flat=True)) == ["refund"]
    # A new conversation matching the rule is assigned by it and auto-answered once.
    Conversation.objects.update(status="closed")
    new = ingest(channel, cm("m3", value="vip@example.org", text="refund please")).message.conversation
    assert new.assignee == carol
    auto = Message.objects.filter(conversation=new, direction=Direction.OUTBOUND)
    assert [m.text for m in auto] == ["We got it."]


def test_rule_on_channel_kind_and_sentiment_escalates(channel, monkeypatch, carol):
    from types import SimpleNamespace

    from rapport.conversations import scoring

    monkeypatch.setattr(
        scoring,
        "_analyser",
        lambda: (
            lambda t: SimpleNamespace(sentiment="negative", score=-0.9, urgency="high", intent="complaint")
        ),
    )
    RoutingRule.objects.create(
        name="Angry", channel_kinds=["webhook"], sentiments=["negative"], escalate=True
    )
    RoutingRule.objects.create(name="Never", position=5, channel_kinds=["email"], set_priority=Priority.LOW)
    conv = ingest(channel, cm("m1", text="awful")).message.conversation
    assert conv.escalated_at is not None and conv.priority == Priority.URGENT
    assert Notification.objects.filter(user=carol, kind="escalated").exists()  # North's manager


def test_sla_deadlines_follow_priority_policy(channel):
    SlaPolicy.objects.create(priority=Priority.NORMAL, first_response_minutes=60, resolution_minutes=480)
    now = timezone.now()
    conv = ingest(channel, cm("m1"), now=now).message.conversation
    assert conv.sla_first_response_due == now + dt.timedelta(minutes=60)
    assert conv.sla_resolution_due == now + dt.timedelta(minutes=480)
    assert conv.sla_state == SlaState.OK


def test_first_reply_stops_the_first_response_clock(channel, alice):
    from rapport.conversations.actions import conversation_reply

    conv = ingest(channel, cm("m1")).message.conversation
    conversation_reply(actor=alice, conversation=conv, text="On it")
    conv.refresh_from_db()
    assert conv.first_response_at is not None and conv.sla_first_response_due is None


def test_sla_check_warns_then_escalates_once(channel, alice, carol):
    person_create(actor=alice, first_name="Jane", identities=[("email", "jane@example.org")])
    now = timezone.now()
    conv = ingest(channel, cm("m1"), now=now).message.conversation  # normal: 4 h first response
    assert sla_check(now=now + dt.timedelta(minutes=230))["at_risk"] == 1
    conv.refresh_from_db()
    assert conv.sla_state == SlaState.AT_RISK
    assert Notification.objects.filter(user=alice, kind="sla_at_risk").count() == 1
    result = sla_check(now=now + dt.timedelta(minutes=241))
    conv.refresh_from_db()
    assert result["breached"] == 1 and conv.sla_state == SlaState.BREACHED
    assert conv.escalated_at is not None and conv.priority == Priority.URGENT
    assert Notification.objects.filter(user=carol, kind="escalated").count() == 1
    assert sla_check(now=now + dt.timedelta(minutes=300))["breached"] == 0  # no second escalation


def test_sla_check_command_runs(channel, capsys):
    ingest(channel, cm("m1"))
    call_command("sla_check")
    assert "checked 1" in capsys.readouterr().out
