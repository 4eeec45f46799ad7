"""The board reads its cards and totals in plain SQL (sales.selectors.pipeline_board): they
must be what the ORM says each user may see, in the same order, with exact decimal sums."""

import itertools
from decimal import Decimal

import pytest

from rapport.people.actions import organisation_create
from rapport.sales.actions import deal_create, pipeline_ensure_default
from rapport.sales.models import Deal
from rapport.sales.selectors import deals_visible, pipeline_board

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(alice, bob, carol):
    pipeline = pipeline_ensure_default()
    stages = list(pipeline.stages.order_by("position"))
    org = organisation_create(actor=bob, name="Private Org", visibility="private")
    owners = itertools.cycle([alice, bob, carol])
    visibilities = itertools.cycle(["everyone", "team", "private"])
    amounts = itertools.cycle(["1000.10", "250.05", "99999.99", "0.01", "1000.10", "12.34", "5000"])
    for i in range(60):
        deal_create(
            actor=next(owners),
            name=f"Deal {i}",
            pipeline=pipeline,
            stage=stages[i % len(stages)],
            amount=Decimal(next(amounts)),
            organisation=org if i % 4 == 0 else None,
            visibility=next(visibilities),
        )
    return pipeline


def test_cards_and_totals_match_what_each_user_may_see(board, alice, bob, carol, reader, admin):
    for user in (alice, bob, carol, reader, admin):
        for owner_id in (None, alice.pk):
            columns = pipeline_board(user=user, pipeline=board, per_stage=3, owner_id=owner_id)
            for column in columns:
                qs = deals_visible(user).filter(pipeline=board, stage=column.stage)
                if owner_id:
                    qs = qs.filter(owner_id=owner_id)
                expected = list(qs.order_by("-amount", "-id")[:3])
                assert [c.pk for c in column.deals] == [d.pk for d in expected], (user, column.stage)
                for card, deal in zip(column.deals, expected, strict=True):
                    assert (card.amount, card.name, card.version, card.owner_name) == (
                        deal.amount, deal.name, deal.version, str(deal.owner),
                    )  # fmt: skip
                    assert str(card.amount) == str(deal.amount)  # same scale: "5000.00"
                everything = list(qs)
                assert column.count == len(everything)
                assert column.total == sum((d.amount for d in everything), Decimal("0"))
                assert column.total.as_tuple().exponent == -2


def test_private_organisation_travels_with_the_card_for_the_access_check(board, alice):
    cards = [c for col in pipeline_board(user=alice, pipeline=board, per_stage=100) for c in col.deals]
    with_org = [c for c in cards if c.organisation is not None]
    assert with_org and {c.organisation.visibility for c in with_org} == {"private"}
    assert Deal.objects.filter(organisation__isnull=False).count() == 15


def test_forecast_matches_a_sum_over_the_visible_deals(board, alice, bob, carol, reader, admin):
    """The forecast groups by day in SQL and by month in Python: every owner's months must be
    the per-deal weighted sums over what each user may see, to the cent."""
    import datetime as dt
    from collections import defaultdict

    from rapport.sales.actions import deal_update
    from rapport.sales.selectors import forecast

    start = dt.date(2026, 1, 1)
    for i, deal in enumerate(Deal.objects.order_by("id")):
        deal_update(
            actor=deal.owner, deal=deal, data={"expected_close": start + dt.timedelta(days=(i * 11) % 200)}
        )
    for user in (alice, bob, carol, reader, admin):
        result = forecast(user=user, start=start, months=6)
        expected: dict = defaultdict(lambda: defaultdict(Decimal))
        for deal in deals_visible(user).filter(status="open").select_related("stage"):
            if deal.expected_close and deal.expected_close < dt.date(2026, 7, 1):
                month = deal.expected_close.replace(day=1)
                expected[deal.owner_id][month] += deal.amount * deal.stage.probability / 100
        got = {o["owner"].pk: o["by_month"] for o in result.owners}
        assert got == {
            owner: {m: v.quantize(Decimal("0.01")) for m, v in months.items()}
            for owner, months in expected.items()
        }, user
        assert result.grand_total == sum((sum(m.values()) for m in got.values()), Decimal("0"))


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"sort": "name"},
        {"sort": "created"},
        {"sort": "-amount"},
        {"sort": "amount"},
        {"q": "deal 1"},
        {"status": "open", "sort": "-amount"},
    ],
    ids=str,
)
def test_deal_rows_match_deal_list_page_by_page(board, alice, bob, carol, reader, admin, filters):
    from rapport.sales.selectors import DealFilters, deal_list, deal_rows

    f = DealFilters(**filters)
    for user in (alice, bob, carol, reader, admin):
        cursor_orm = cursor_sql = None
        while True:
            orm = deal_list(user=user, filters=f, cursor=cursor_orm, limit=7)
            raw = deal_rows(user=user, filters=f, cursor=cursor_sql, limit=7)
            assert [d.pk for d in raw.items] == [d.pk for d in orm.items], (user, filters)
            assert (raw.total, raw.total_capped) == (orm.total, orm.total_capped)
            for r, o in zip(raw.items, orm.items, strict=True):
                assert (r.name, r.amount, r.status, r.stage_name, r.owner, r.expected_close) == (
                    o.name, o.amount, o.status, o.stage.name, str(o.owner), o.expected_close,
                )  # fmt: skip
            assert raw.next_cursor == orm.next_cursor
            if not orm.next_cursor:
                break
            cursor_orm, cursor_sql = orm.next_cursor, raw.next_cursor


def test_show_more_walks_every_visible_card_of_a_stage_in_order(board, alice, bob, carol, reader, admin):
    from rapport.sales.selectors import pipeline_board, stage_cards

    for user in (alice, bob, carol, reader, admin):
        for column in pipeline_board(user=user, pipeline=board, per_stage=2):
            seen = [c.pk for c in column.deals]
            cursor = column.more
            while cursor:
                cards, cursor = stage_cards(user=user, stage=column.stage, cursor=cursor, limit=3)
                seen += [c.pk for c in cards]
            expected = list(
                deals_visible(user)
                .filter(stage=column.stage)
                .order_by("-amount", "-id")
                .values_list("pk", flat=True)
            )
            assert seen == expected, (user, column.stage)


def test_show_more_endpoint(board, alice, bob, alice_client, bob_client):
    from rapport.core.pagination import encode_cursor
    from rapport.sales.selectors import pipeline_board

    column = next(c for c in pipeline_board(user=alice, pipeline=board, per_stage=1) if c.more)
    response = alice_client.get(f"/pipeline/stages/{column.stage.pk}/cards/", {"after": column.more})
    data = response.json()
    assert response.status_code == 200 and data["ok"] and 'class="card"' in data["html"]
    private_of_bob = Deal.objects.filter(owner=bob, visibility="private", stage=column.stage)
    for deal in private_of_bob:
        assert f'data-deal-id="{deal.pk}"' not in data["html"]
    for bad in ["", "!!", encode_cursor(["x", 1]), encode_cursor([1])]:
        response = alice_client.get(f"/pipeline/stages/{column.stage.pk}/cards/", {"after": bad})
        assert response.status_code == 400 and response.json()["ok"] is False
    assert alice_client.get("/pipeline/stages/999999/cards/", {"after": column.more}).status_code == 404
    html = alice_client.get("/pipeline/").content.decode()
    assert "Show more" not in html or 'class="btn btn-small more-cards"' in html
