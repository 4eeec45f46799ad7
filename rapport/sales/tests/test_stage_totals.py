"""The board's column totals: on SQLite read from DealStageTotal, which triggers keep in step
with every write to sales_deal. Whatever the path, they must equal a live count and sum."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum

from rapport.sales.actions import deal_create, pipeline_ensure_default
from rapport.sales.models import Deal, DealStageTotal
from rapport.sales.selectors import deals_visible, pipeline_board

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(db):
    return pipeline_ensure_default()


@pytest.fixture
def make_deal():
    def make(user, *, amount, stage, visibility="everyone"):
        return deal_create(
            actor=user, name=f"Deal {amount}", stage=stage, amount=amount, visibility=visibility
        )

    return make


def _live(user, pipeline):
    rows = (
        deals_visible(user)
        .filter(pipeline=pipeline)
        .values("stage_id")
        .annotate(n=Count("id"), t=Sum("amount"))
    )
    return {r["stage_id"]: (r["n"], Decimal(r["t"]).quantize(Decimal("0.01"))) for r in rows.order_by()}


def _board(user, pipeline, owner_id=None):
    return {
        c.stage.pk: (c.count, c.total.quantize(Decimal("0.01")))
        for c in pipeline_board(user=user, pipeline=pipeline, owner_id=owner_id)
        if c.count
    }


def test_totals_follow_every_kind_of_write(alice, bob, carol, admin, make_deal, pipeline):
    stages = list(pipeline.stages.order_by("position"))
    a1 = make_deal(alice, amount="100.50", stage=stages[0])
    make_deal(alice, amount="20", stage=stages[0], visibility="private")
    make_deal(alice, amount="7", stage=stages[1], visibility="team")
    b1 = make_deal(bob, amount="1000", stage=stages[1])
    make_deal(bob, amount="5", stage=stages[2], visibility="private")
    for user in (alice, bob, carol, admin):
        assert _board(user, pipeline) == _live(user, pipeline)

    # save() through the ORM, queryset.update() (no signals), bulk_create, delete
    a1.stage, a1.amount = stages[2], Decimal("99.99")
    a1.save()
    Deal.objects.filter(pk=b1.pk).update(visibility="private", amount=Decimal("1"))
    Deal.objects.bulk_create(
        [
            Deal(
                owner=alice, team=a1.team, pipeline=pipeline, stage=stages[3], name=f"B{i}", amount=Decimal(i)
            )
            for i in range(4)
        ]
    )
    Deal.objects.filter(amount=Decimal("7")).delete()
    for user in (alice, bob, carol, admin):
        assert _board(user, pipeline) == _live(user, pipeline)
    mine = deals_visible(alice).filter(pipeline=pipeline, owner=alice)
    assert sum(n for n, _ in _board(alice, pipeline, owner_id=alice.pk).values()) == mine.count()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the totals table is kept on SQLite only")
def test_triggers_exist_and_rows_are_kept(alice, make_deal, pipeline):
    make_deal(alice, amount="3", stage=pipeline.stages.first())
    assert DealStageTotal.objects.filter(pipeline_id=pipeline.pk, n=1).exists()
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'sales_deal'")
        names = {row[0] for row in cur.fetchall()}
    # A later migration that rebuilds sales_deal on SQLite drops them with the old table.
    assert {"sales_deal_totals_ai", "sales_deal_totals_ad", "sales_deal_totals_au"} <= names
