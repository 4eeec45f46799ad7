"""The home page (web/dashboard.py): the user's open deals, what closes soon, their open tasks
and recent activity — with the names of records they may not see left out."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from rapport.activities.actions import activity_log
from rapport.people.actions import person_create
from rapport.sales.actions import deal_create, deal_move, pipeline_ensure_default
from rapport.sales.models import Deal

pytestmark = pytest.mark.django_db


def test_kpis_match_the_users_open_deals(alice, bob, alice_client):
    pipeline = pipeline_ensure_default()
    stages = {s.name: s for s in pipeline.stages.all()}
    today = timezone.localdate()
    for i in range(6):
        deal_create(
            actor=alice, name=f"Mine {i}", amount=Decimal("100.25") * (i + 1),
            expected_close=today + dt.timedelta(days=10 - i), visibility="private",
        )  # fmt: skip
    won = deal_create(actor=alice, name="Won one", amount="999")
    deal_move(actor=alice, deal=won, stage=stages["Won"])
    deal_create(actor=bob, name="Not mine", amount="5000", visibility="everyone")
    response = alice_client.get("/")
    assert response.status_code == 200
    expected = Deal.objects.filter(owner=alice, status="open").aggregate(n=Count("id"), total=Sum("amount"))
    ctx = response.context
    assert (
        (ctx["open_count"], ctx["open_total"])
        == (expected["n"], expected["total"])
        == (6, Decimal("2105.25"))
    )
    closing = [d.name for d in ctx["closing"]]
    assert closing == [f"Mine {i}" for i in range(5, -1, -1)]  # soonest first
    html = response.content.decode()
    assert "Mine 5" in html and "Not mine" not in html and "2,105" in html


def test_tasks_and_recent_activity_hide_what_the_user_may_not_see(alice, bob):
    from conftest import login

    secret = person_create(actor=alice, first_name="Secret", last_name="Client", visibility="private")
    activity_log(
        actor=alice, kind="task", subject="Call back the client", person=secret, visibility="everyone",
        assignee=bob, due_at=timezone.now() - dt.timedelta(hours=1),
    )  # fmt: skip
    activity_log(actor=alice, kind="note", subject="Private note", person=secret, visibility="private")
    client = login(bob)
    response = client.get("/")
    html = response.content.decode()
    assert "Call back the client" in html and "1 overdue" in html
    assert "Secret" not in html and "Private note" not in html
    html = login(alice).get("/").content.decode()
    assert "Secret Client" in html and "Private note" in html
