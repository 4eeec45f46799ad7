from decimal import Decimal

from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create, pipeline_ensure_default, product_create
from rapport.sales.models import Deal, DealParticipant, Order, Pipeline, Product


def test_deal_round_trip_with_participants(alice_api, alice):
    pipeline = pipeline_ensure_default()
    org = organisation_create(actor=alice, name="Acme")
    champion = person_create(actor=alice, first_name="Cham")
    r = alice_api.post(
        "/deals",
        {
            "name": "Big one",
            "amount": "12500.50",
            "currency": "usd",
            "organisation": org.pk,
            "expected_close": "2030-01-31",
            "participants": [{"person": champion.pk, "role": "champion"}],
        },
    )
    assert r.status_code == 201, r.content
    deal = r.json()
    assert deal["pipeline"]["id"] == pipeline.pk
    assert deal["stage"]["name"] == "Lead"
    assert Decimal(deal["amount"]) == Decimal("12500.50")
    assert deal["currency"] == "USD"
    assert deal["organisation"] == {"id": org.pk, "name": "Acme"}
    assert deal["participants"] == [{"person": {"id": champion.pk, "name": "Cham"}, "role": "champion"}]

    did = deal["id"]
    r = alice_api.patch(f"/deals/{did}", {"name": "Bigger one", "amount": 20000})
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "Bigger one"
    assert Decimal(r.json()["amount"]) == Decimal("20000")

    other = person_create(actor=alice, first_name="User")
    assert (
        alice_api.post(f"/deals/{did}/participants", {"person": other.pk, "role": "user"}).status_code == 201
    )
    assert DealParticipant.objects.filter(deal_id=did).count() == 2
    assert alice_api.delete(f"/deals/{did}/participants/{champion.pk}").status_code == 204
    assert list(DealParticipant.objects.filter(deal_id=did).values_list("person_id", flat=True)) == [other.pk]

    assert alice_api.delete(f"/deals/{did}").status_code == 204
    assert not Deal.objects.filter(pk=did).exists()


def test_move_changes_stage_and_status(alice_api, alice):
    pipeline = pipeline_ensure_default()
    deal = deal_create(actor=alice, name="D")
    won = pipeline.stages.get(is_won=True)
    r = alice_api.post(f"/deals/{deal.pk}/move", {"stage": won.pk, "version": deal.version})
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "won"
    assert r.json()["stage"]["id"] == won.pk
    assert r.json()["closed_at"] is not None


def test_move_with_a_stale_version_is_409_and_changes_nothing(alice_api, alice):
    pipeline = pipeline_ensure_default()
    deal = deal_create(actor=alice, name="D")
    assert alice_api.patch(f"/deals/{deal.pk}", {"description": "x"}).status_code == 200
    lost = pipeline.stages.get(is_lost=True)
    r = alice_api.post(f"/deals/{deal.pk}/move", {"stage": lost.pk, "version": 1})
    assert r.status_code == 409
    assert r.json()["current_version"] == 2
    deal.refresh_from_db()
    assert deal.status == "open"


def test_move_to_unknown_stage_is_400(alice_api, alice):
    pipeline_ensure_default()
    deal = deal_create(actor=alice, name="D")
    r = alice_api.post(f"/deals/{deal.pk}/move", {"stage": 987654})
    assert r.status_code == 400
    assert "stage" in r.json()["errors"]


def test_stage_of_another_pipeline_is_refused_on_create(alice_api, carol_api):
    default = pipeline_ensure_default()
    other = carol_api.post("/pipelines", {"name": "Renewals", "stages": [{"name": "Due"}]}).json()
    r = alice_api.post("/deals", {"name": "D", "pipeline": default.pk, "stage": other["stages"][0]["id"]})
    assert r.status_code == 400
    assert not Deal.objects.exists()


def test_deal_filters_and_paging(alice_api, alice):
    pipeline = pipeline_ensure_default()
    qualified = pipeline.stages.get(name="Qualified")
    for i in range(9):
        deal_create(actor=alice, name=f"Deal {i}", amount=i * 100, stage=qualified if i % 3 == 0 else None)
    by_stage = alice_api.get("/deals", stage=qualified.pk).json()
    assert by_stage["total"] == 3
    assert alice_api.get("/deals", status="won").json()["total"] == 0
    assert alice_api.get("/deals", status="bogus").status_code == 400
    ids, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "-amount"}
        if cursor:
            params["cursor"] = cursor
        body = alice_api.get("/deals", **params).json()
        ids += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == 9
    amounts = [Deal.objects.get(pk=i).amount for i in ids]
    assert amounts == sorted(amounts, reverse=True)


def test_deal_bad_amounts_are_refused(alice_api):
    pipeline_ensure_default()
    for amount in ["-5", "1e20", "abc", "NaN", "Infinity"]:
        r = alice_api.post("/deals", {"name": "D", "amount": amount})
        assert r.status_code in (400, 422), (amount, r.content)
    assert alice_api.post("/deals", {"name": "D", "currency": "EURO"}).status_code in (400, 422)
    assert alice_api.post("/deals", {"name": "D", "expected_close": "31/01/2030"}).status_code == 422
    assert alice_api.post("/deals", {"name": "D", "expected_close": "0001-01-01"}).status_code == 422
    assert not Deal.objects.exists()


def test_pipelines_readable_by_all_creatable_by_managers_only(alice_api, carol_api):
    pipeline_ensure_default()
    assert [p["name"] for p in alice_api.get("/pipelines").json()] == ["Sales"]
    body = {
        "name": "Partners",
        "stages": [
            {"name": "Intro", "probability": 20},
            {"name": "Signed", "probability": 100, "is_won": True},
        ],
    }
    assert alice_api.post("/pipelines", body).status_code == 403
    r = carol_api.post("/pipelines", body)
    assert r.status_code == 201, r.content
    assert [s["name"] for s in r.json()["stages"]] == ["Intro", "Signed"]
    pid = r.json()["id"]
    assert alice_api.post(f"/pipelines/{pid}/stages", {"name": "Churned"}).status_code == 403
    r = carol_api.post(f"/pipelines/{pid}/stages", {"name": "Churned", "probability": 0, "is_lost": True})
    assert r.status_code == 201
    assert r.json()["position"] == 2
    assert carol_api.post(f"/pipelines/{pid}/stages", {"name": "Churned"}).status_code == 400
    assert carol_api.post("/pipelines", body).status_code == 400  # name taken
    assert (
        carol_api.post("/pipelines", {"name": "X", "stages": [{"name": "A", "probability": 101}]}).status_code
        == 422
    )
    assert Pipeline.objects.count() == 2


def test_products_read_for_all_create_for_managers(alice_api, carol_api):
    r = carol_api.post("/products", {"name": "Widget", "sku": "W-1", "price": "9.99"})
    assert r.status_code == 201, r.content
    assert alice_api.post("/products", {"name": "Gadget", "sku": "G-1"}).status_code == 403
    assert carol_api.post("/products", {"name": "Widget 2", "sku": "W-1"}).status_code == 400
    listed = alice_api.get("/products").json()
    assert [p["sku"] for p in listed["items"]] == ["W-1"]
    assert listed["total"] == 1
    assert Product.objects.count() == 1


def test_orders_per_organisation(alice_api, alice, carol):
    org = organisation_create(actor=alice, name="Acme")
    product = product_create(actor=carol, name="Seat", sku="S", price="10.00")
    r = alice_api.post(f"/organisations/{org.pk}/orders", {"product": product.pk, "quantity": 3})
    assert r.status_code == 201, r.content
    assert Decimal(r.json()["amount"]) == Decimal("30.00")
    assert alice_api.post(f"/organisations/{org.pk}/orders", {"product": 999}).status_code == 400
    assert (
        alice_api.post(f"/organisations/{org.pk}/orders", {"product": product.pk, "quantity": 0}).status_code
        == 422
    )
    listed = alice_api.get(f"/organisations/{org.pk}/orders").json()
    assert [o["product"]["name"] for o in listed["items"]] == ["Seat"]
    assert Order.objects.count() == 1


def test_deal_list_uses_a_fixed_number_of_queries(alice_api, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = organisation_create(actor=alice, name="Acme")
    p = person_create(actor=alice, first_name="P")
    alice_api.get("/me")
    deal_create(actor=alice, name="D0", organisation=org, people=[(p, "x")])
    with CaptureQueriesContext(connection) as small:
        alice_api.get("/deals")
    for i in range(15):
        deal_create(actor=alice, name=f"D{i + 1}", organisation=org, people=[(p, "x")])
    with CaptureQueriesContext(connection) as large:
        assert len(alice_api.get("/deals").json()["items"]) == 16
    assert len(large.captured_queries) == len(small.captured_queries)
