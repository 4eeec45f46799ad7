"""A newcomer's first minutes, in a real browser: log in → quick-add a person → log a call →
see it on the timeline → drag a deal to the next stage."""

import re

import pytest

from rapport.people.models import Person
from rapport.sales.actions import deal_create, pipeline_ensure_default
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_quick_add_log_call_timeline_and_drag_deal(page, live_server, alice):
    pipeline = pipeline_ensure_default()
    stages = list(pipeline.stages.order_by("position"))
    deal = deal_create(actor=alice, name="Acme rollout", amount="12000", stage=stages[0])

    log_in(page, live_server, "alice")

    # Quick add from the keyboard shortcut, as the top bar promises.
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r"/quick-add/$"))
    page.fill("#qa-text", "Jane Doe <jane@acme.com> @janedoe, CTO at Acme")
    page.click("button[value=preview]")
    page.get_by_text("Jane Doe").first.wait_for()
    page.click("button[value=save]")
    page.wait_for_url(re.compile(r"/people/\d+/$"))
    person = Person.objects.get(first_name="Jane", last_name="Doe")
    assert person.title == "CTO"
    assert person.organisation is not None and person.organisation.name == "Acme"
    assert set(person.identities.values_list("kind", "value")) >= {
        ("email", "jane@acme.com"),
        ("x", "janedoe"),
    }

    # Log a call from the person's page.
    page.click("summary:has-text('Log a note, call')")
    page.select_option("details.logbox select[name=kind]", "call")
    page.fill("details.logbox input[name=subject]", "Intro call about the rollout")
    page.select_option("details.logbox select[name=call_direction]", "outbound")
    page.fill("details.logbox input[name=call_duration_min]", "12")
    page.select_option("details.logbox select[name=call_outcome]", "connected")
    page.click("details.logbox button[type=submit]")
    page.wait_for_url(re.compile(rf"/people/{person.pk}/"))
    timeline = page.locator("#timeline")
    assert "Intro call about the rollout" in timeline.inner_text()
    call = person.activities.get()
    assert (call.kind, call.call_direction, call.call_duration_s, call.call_outcome) == (
        "call",
        "outbound",
        720,
        "connected",
    )

    # Drag the deal to the next stage on the board.
    page.goto(f"{live_server.url}/pipeline/")
    card = page.locator(f"[data-deal-id='{deal.pk}']")
    target = page.locator(f"[data-stage-id='{stages[1].pk}']")
    with page.expect_response(re.compile(rf"/deals/{deal.pk}/move/")) as moved:
        card.drag_to(target)
    assert moved.value.status == 200
    page.locator(f"[data-stage-id='{stages[1].pk}'] [data-deal-id='{deal.pk}']").wait_for()
    deal.refresh_from_db()
    assert deal.stage_id == stages[1].pk

    # And from the keyboard: "Move…" opens a stage picker on the card.
    page.locator(f"[data-deal-id='{deal.pk}'] .move-link").click()
    page.locator(f"#mv-{deal.pk}").select_option(str(stages[2].pk))
    with page.expect_response(re.compile(rf"/deals/{deal.pk}/move/")) as moved:
        page.locator(f"[data-deal-id='{deal.pk}'] .move-form button").press("Enter")
    assert moved.value.status == 200
    page.locator(f"[data-stage-id='{stages[2].pk}'] [data-deal-id='{deal.pk}']").wait_for()
    deal.refresh_from_db()
    assert deal.stage_id == stages[2].pk
    assert page.console_errors == []


def test_board_shows_more_cards_on_demand(page, live_server, alice):
    pipeline = pipeline_ensure_default()
    lead = pipeline.stages.order_by("position").first()
    deals = [deal_create(actor=alice, name=f"Deal {i:02d}", amount=str(1000 + i), stage=lead) for i in range(25)]
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/pipeline/")
    column = page.locator(f"[data-stage-id='{lead.pk}']")
    assert column.locator(".card").count() == 20
    with page.expect_response(re.compile(r"/pipeline/stages/\d+/cards/")) as more:
        column.locator(".more-cards").click()
    assert more.value.status == 200
    column.locator(f"[data-deal-id='{deals[0].pk}']").wait_for()  # the smallest, last
    assert column.locator(".card").count() == 25
    assert column.locator(".more-cards").count() == 0
    assert page.console_errors == []
