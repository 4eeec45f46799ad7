"""Web screens for deals, the pipeline board, the forecast and the pipeline settings."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from conftest import login
from rapport.audit.models import AuditEntry
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create, deal_update, pipeline_ensure_default
from rapport.sales.models import Deal, Pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(db):
    return pipeline_ensure_default()


def stage(pipeline, name):
    return pipeline.stages.get(name=name)


def month_start(offset=0):
    today = timezone.localdate()
    y, m = today.year, today.month + offset
    while m > 12:
        y, m = y + 1, m - 12
    return dt.date(y, m, 1)


@pytest.fixture
def private_deal(alice, pipeline):
    return deal_create(
        actor=alice,
        name="Alice secret deal",
        amount="50000",
        visibility="private",
        stage=stage(pipeline, "Proposal"),
        expected_close=month_start() + dt.timedelta(days=3),
    )


# --- list and detail --------------------------------------------------------------------


def test_deal_list_filters_by_status_and_stage(alice, alice_client, pipeline):
    deal_create(actor=alice, name="Open one", stage=stage(pipeline, "Lead"))
    deal_create(actor=alice, name="Won one", stage=stage(pipeline, "Won"))
    response = alice_client.get("/deals/?status=won")
    assert [d.name for d in response.context["page"].items] == ["Won one"]
    response = alice_client.get(f"/deals/?stage={stage(pipeline, 'Lead').pk}")
    assert [d.name for d in response.context["page"].items] == ["Open one"]
    assert response.context["nav"] == "deals"
    assert alice_client.get("/deals/?status=bogus").status_code == 400
    assert alice_client.get("/deals/?sort=owner__password").status_code == 400


def test_deal_detail_shows_amount_weighted_participants_and_audit(alice, alice_client, pipeline):
    org = organisation_create(actor=alice, name="Acme")
    person = person_create(actor=alice, first_name="Dana", last_name="Scully")
    deal = deal_create(
        actor=alice,
        name="Acme expansion",
        amount="10000",
        organisation=org,
        stage=stage(pipeline, "Proposal"),
        people=[(person, "Decision maker")],
    )
    html = alice_client.get(f"/deals/{deal.pk}/").content.decode()
    assert "10,000.00" in html and "5,000.00" in html  # 50 % weighted
    assert "Dana Scully" in html and "Decision maker" in html
    assert "Acme" in html and "Created deal Acme expansion" in html


def test_bob_cannot_see_or_touch_alices_private_deal(alice, bob, bob_client, pipeline, private_deal):
    assert bob_client.get(f"/deals/{private_deal.pk}/").status_code == 404
    assert "Alice secret deal" not in bob_client.get("/deals/").content.decode()
    board = bob_client.get(f"/pipeline/?pipeline={pipeline.pk}").content.decode()
    assert "Alice secret deal" not in board
    assert f'data-deal-id="{private_deal.pk}"' not in board
    forecast = bob_client.get("/forecast/")
    assert forecast.context["forecast"].grand_total == Decimal("0")
    target = stage(pipeline, "Won")
    response = bob_client.post(
        f"/deals/{private_deal.pk}/move/", {"stage": target.pk, "version": 1}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 404
    response = bob_client.post(
        f"/deals/{private_deal.pk}/edit/", {"name": "Mine now", "visibility": "everyone"}
    )
    assert response.status_code == 404
    assert bob_client.post(f"/deals/{private_deal.pk}/delete/").status_code == 404
    private_deal.refresh_from_db()
    assert private_deal.name == "Alice secret deal"
    assert private_deal.stage.name == "Proposal" and private_deal.version == 1


# --- create and edit --------------------------------------------------------------------


def test_new_deal_is_prefilled_from_person_and_organisation(alice, alice_client, pipeline):
    org = organisation_create(actor=alice, name="Initech")
    person = person_create(actor=alice, first_name="Bill", last_name="Lumbergh", organisation=org)
    html = alice_client.get(f"/deals/new/?person={person.pk}").content.decode()
    assert f'value="Bill Lumbergh (#{person.pk})"' in html
    assert f'value="Initech (#{org.pk})"' in html
    response = alice_client.post(
        "/deals/new/",
        {
            "name": "TPS reports",
            "amount": "1234.50",
            "currency": "usd",
            "organisation": f"Initech (#{org.pk})",
            "person": f"#{person.pk}",
            "role": "Champion",
            "visibility": "team",
        },
    )
    deal = Deal.objects.get(name="TPS reports")
    assert response["Location"] == f"/deals/{deal.pk}/"
    assert deal.amount == Decimal("1234.50") and deal.currency == "USD" and deal.organisation == org
    assert deal.participants.get().role == "Champion"
    assert deal.stage == pipeline.stages.order_by("position").first()


def test_new_deal_with_bad_amount_or_huge_name_shows_inline_errors(alice_client, pipeline):
    response = alice_client.post(
        "/deals/new/", {"name": "x" * 10000, "amount": "lots", "currency": "EUR", "visibility": "everyone"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most 200 characters" in html and "Enter a number" in html
    assert not Deal.objects.exists()


def test_deal_name_with_html_is_escaped_everywhere(alice, alice_client, pipeline):
    deal = deal_create(
        actor=alice,
        name="<script>alert('x')</script>",
        amount="10",
        expected_close=month_start() + dt.timedelta(days=1),
    )
    for url in ("/deals/", f"/deals/{deal.pk}/", "/pipeline/", f"/deals/{deal.pk}/edit/"):
        html = alice_client.get(url).content.decode()
        assert "<script>alert(" not in html, url
        assert "&lt;script&gt;" in html, url


def test_stale_deal_edit_keeps_input_and_does_not_overwrite(alice, carol, alice_client, pipeline):
    deal = deal_create(actor=alice, name="Original", amount="100")
    deal_update(actor=carol, deal=deal, data={"amount": "999"}, expected_version=1)
    response = alice_client.post(
        f"/deals/{deal.pk}/edit/",
        {"name": "My rename", "amount": "150", "currency": "EUR", "visibility": "everyone", "version": 1},
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert 'value="My rename"' in html and "999" in html
    deal.refresh_from_db()
    assert deal.name == "Original" and deal.amount == Decimal("999.00")


def test_deal_edit_with_stage_of_other_pipeline_is_inline_error(alice, admin, alice_client, pipeline):
    from rapport.sales.actions import pipeline_create

    other = pipeline_create(
        name="Renewals", stages=[("Due", 50, False, False), ("Renewed", 100, True, False)]
    )
    deal = deal_create(actor=alice, name="D", amount="1")
    response = alice_client.post(
        f"/deals/{deal.pk}/edit/",
        {
            "name": "D",
            "amount": "1",
            "currency": "EUR",
            "pipeline": pipeline.pk,
            "stage": other.stages.first().pk,
            "visibility": "everyone",
            "version": 1,
        },
    )
    assert response.status_code == 400
    assert "not in this pipeline" in response.content.decode()


def test_reader_sees_deal_without_edit_controls_and_cannot_move(alice, reader, pipeline):
    deal = deal_create(actor=alice, name="Readable", amount="5")
    client = login(reader)
    html = client.get(f"/deals/{deal.pk}/").content.decode()
    assert f"/deals/{deal.pk}/edit/" not in html and "/move/" not in html
    board = client.get("/pipeline/").content.decode()
    assert 'draggable="true"' not in board and "move-link" not in board
    assert client.get(f"/deals/{deal.pk}/move/").status_code == 403
    response = client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stage(pipeline, "Won").pk, "version": 1},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403
    assert client.get("/deals/new/").status_code == 403
    deal.refresh_from_db()
    assert deal.stage.name == "Lead"


# --- board ------------------------------------------------------------------------------


def test_board_shows_columns_with_counts_totals_and_weighted(alice, alice_client, pipeline):
    deal_create(actor=alice, name="A", amount="1000", stage=stage(pipeline, "Proposal"))
    deal_create(actor=alice, name="B", amount="3000", stage=stage(pipeline, "Proposal"))
    response = alice_client.get("/pipeline/")
    assert response.context["nav"] == "pipeline"
    column = next(c for c in response.context["columns"] if c.stage.name == "Proposal")
    assert column.count == 2 and column.total == Decimal("4000") and column.weighted == Decimal("2000.00")
    html = response.content.decode()
    assert f'data-stage-id="{column.stage.pk}"' in html
    assert html.count('class="card"') == 2
    assert "sales/board.js" in html


def test_board_owner_me_shows_only_my_deals(alice, carol, alice_client, pipeline):
    deal_create(actor=alice, name="Alice deal")
    deal_create(actor=carol, name="Carol deal")
    html = alice_client.get("/pipeline/?owner=me").content.decode()
    assert "Alice deal" in html and "Carol deal" not in html


def test_board_query_count_is_bounded(alice, alice_client, pipeline, django_assert_max_num_queries):
    org = organisation_create(actor=alice, name="Acme")
    for i in range(40):
        deal_create(
            actor=alice, name=f"Deal {i}", amount=str(i), organisation=org, stage=pipeline.stages.all()[i % 6]
        )
    stages = pipeline.stages.count()
    with django_assert_max_num_queries(7 + stages):
        response = alice_client.get(f"/pipeline/?pipeline={pipeline.pk}")
    assert response.status_code == 200


def test_drag_endpoint_moves_deal_answers_json_and_records_audit(alice, alice_client, pipeline):
    deal = deal_create(actor=alice, name="Drag me", amount="200")
    won = stage(pipeline, "Won")
    response = alice_client.post(
        f"/deals/{deal.pk}/move/", {"stage": won.pk, "version": 1}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "id": deal.pk,
        "stage": won.pk,
        "status": "won",
        "version": 2,
        "weighted": "200.00",
    }
    deal.refresh_from_db()
    assert deal.stage == won and deal.status == "won" and deal.closed_at is not None
    entry = AuditEntry.objects.filter(model="sales.deal", object_id=deal.pk, action="update").get()
    assert entry.actor == alice and entry.changes["stage"][1] == str(won)  # shown by name


def test_drag_with_stale_version_is_409_and_changes_nothing(alice, carol, alice_client, pipeline):
    deal = deal_create(actor=alice, name="Contested", amount="1")
    deal_update(actor=carol, deal=deal, data={"amount": "2"}, expected_version=1)
    response = alice_client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stage(pipeline, "Lost").pk, "version": 1},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 409
    assert response.json()["ok"] is False and response.json()["version"] == 2
    deal.refresh_from_db()
    assert deal.stage.name == "Lead"


def test_move_with_unknown_stage_is_400(alice, alice_client, pipeline):
    deal = deal_create(actor=alice, name="X")
    response = alice_client.post(
        f"/deals/{deal.pk}/move/", {"stage": "999999"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and response.json()["ok"] is False


def test_keyboard_move_form_works_without_javascript(alice, alice_client, bob_client, pipeline):
    deal = deal_create(actor=alice, name="Keyboard <b>", visibility="private")
    html = alice_client.get("/pipeline/").content.decode()
    assert f'<a class="move-link small" href="/deals/{deal.pk}/move/"' in html
    assert "Keyboard &lt;b&gt;" in html and "Keyboard <b>" not in html
    page = alice_client.get(f"/deals/{deal.pk}/move/")
    assert page.status_code == 200
    picker = page.content.decode()
    assert re.search(rf'<form method="post" action="/deals/{deal.pk}/move/"', picker)
    assert f'value="{stage(pipeline, "Qualified").pk}"' in picker
    assert f'<option value="{stage(pipeline, "Lead").pk}"' not in picker  # where it is now
    assert bob_client.get(f"/deals/{deal.pk}/move/").status_code == 404  # private to Alice
    response = alice_client.post(
        f"/deals/{deal.pk}/move/", {"stage": stage(pipeline, "Qualified").pk, "version": 1}
    )
    assert response.status_code == 302 and response["Location"] == f"/pipeline/?pipeline={pipeline.pk}"
    deal.refresh_from_db()
    assert deal.stage.name == "Qualified"


def test_move_requires_csrf_token(alice, pipeline):
    from django.test import Client

    deal = deal_create(actor=alice, name="Guarded")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(f"/deals/{deal.pk}/move/", {"stage": stage(pipeline, "Won").pk})
    assert response.status_code == 403
    deal.refresh_from_db()
    assert deal.stage.name == "Lead"


# --- forecast ---------------------------------------------------------------------------


def test_forecast_sums_weighted_open_deals_per_owner_and_month(alice, carol, alice_client, pipeline):
    this, nxt = month_start(), month_start(1)
    deal_create(
        actor=alice, name="A1", amount="1000", stage=stage(pipeline, "Proposal"), expected_close=this
    )  # 500
    deal_create(
        actor=alice, name="A2", amount="400", stage=stage(pipeline, "Qualified"), expected_close=nxt
    )  # 100
    deal_create(
        actor=carol, name="C1", amount="200", stage=stage(pipeline, "Negotiation"), expected_close=this
    )  # 150
    deal_create(actor=alice, name="W", amount="700", stage=stage(pipeline, "Won"), expected_close=this)
    response = alice_client.get("/forecast/?months=3")
    assert response.context["nav"] == "forecast"
    rows = {r["owner"].username: r for r in response.context["rows"]}
    assert rows["alice"]["cells"] == [Decimal("500.00"), Decimal("100.00"), Decimal("0")]
    assert rows["alice"]["total"] == Decimal("600.00")
    assert rows["carol"]["cells"][0] == Decimal("150.00")
    assert response.context["totals"] == [Decimal("650.00"), Decimal("100.00"), Decimal("0")]
    assert response.context["forecast"].grand_total == Decimal("750.00")
    assert response.context["won"][0] == Decimal("700")
    html = response.content.decode()
    assert "<svg" in html and "<title>Weighted · " in html and "750.00" in html


def test_forecast_months_parameter_is_bounded(alice_client, pipeline):
    assert len(alice_client.get("/forecast/?months=9999").context["labels"]) == 24
    assert len(alice_client.get("/forecast/?months=abc").context["labels"]) == 6


# --- pipeline settings ------------------------------------------------------------------


def test_pipeline_settings_only_for_managers(alice_client, carol):
    assert alice_client.get("/pipeline/settings/").status_code == 403
    assert alice_client.post("/pipeline/settings/", {"name": "X", "stages": "A, 1\nB, 2"}).status_code == 403
    assert not Pipeline.objects.filter(name="X").exists()
    client = login(carol)
    response = client.post(
        "/pipeline/settings/",
        {"name": "Partners", "stages": "Intro, 10\nPilot, 60\nSigned, 100, won\nDropped, 0, lost"},
    )
    assert response.status_code == 302
    created = Pipeline.objects.get(name="Partners")
    assert [(s.name, s.probability, s.is_won, s.is_lost) for s in created.stages.all()] == [
        ("Intro", 10, False, False),
        ("Pilot", 60, False, False),
        ("Signed", 100, True, False),
        ("Dropped", 0, False, True),
    ]


def test_pipeline_settings_rejects_bad_probability_with_line_number(carol):
    client = login(carol)
    response = client.post("/pipeline/settings/", {"name": "Bad", "stages": "Intro, 10\nPilot, 160"})
    assert response.status_code == 400
    assert "Line 2" in response.content.decode()
    assert not Pipeline.objects.filter(name="Bad").exists()
