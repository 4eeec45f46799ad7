"""Global search reads each group in plain SQL (web/search.py): every group must hold what
the ORM selectors (organisation_list, deal_list, activities_matching) give each user, in the
same order, and an activity about a private person must not show that person's name."""

import itertools

import pytest

from rapport.activities.actions import activity_log
from rapport.activities.selectors import activities_matching
from rapport.people.actions import organisation_create, person_create
from rapport.people.selectors import OrgFilters, organisation_list
from rapport.sales.actions import deal_create
from rapport.sales.selectors import DealFilters, deal_list
from rapport.web.search import global_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(alice, bob, carol):
    owners = itertools.cycle([alice, bob, carol])
    vis = itertools.cycle(["everyone", "team", "private"])
    for i in range(12):
        org = organisation_create(
            actor=next(owners), name=f"Marble Works {i}", domains=[f"marble{i}.example"], visibility=next(vis),
            industry="Stone",
        )  # fmt: skip
        deal_create(
            actor=next(owners),
            name=f"Marble deal {i}",
            organisation=org,
            visibility=next(vis),
            amount="1234.5",
        )
        activity_log(
            actor=next(owners),
            kind="call",
            subject=f"Marble call {i}",
            visibility=next(vis),
            organisation=org,
        )


def _check(user, q):
    groups = {g.key: g for g in global_search(user, q)}
    orgs = organisation_list(user=user, filters=OrgFilters(q=q), limit=8, with_total=False).items
    assert [r.url for r in groups["organisations"].results] == [f"/organisations/{o.pk}/" for o in orgs]
    assert [r.subtitle for r in groups["organisations"].results] == [o.industry for o in orgs]
    deals = deal_list(user=user, filters=DealFilters(q=q, sort="name"), limit=8, with_total=False).items
    assert [r.url for r in groups["deals"].results] == [f"/deals/{d.pk}/" for d in deals]
    assert all(
        r.subtitle.endswith("1,234 EUR") or r.subtitle.endswith("1,235 EUR") for r in groups["deals"].results
    )
    acts = activities_matching(user, q).order_by("-occurred_at", "-id")[:8]
    assert [r.url for r in groups["activities"].results] == [f"/activities/{a.pk}/" for a in acts]


@pytest.mark.parametrize("q", ["marb", "Marble call", "marble3.exa", "zzz"])
def test_groups_match_the_orm_selectors_for_every_user(data, alice, bob, carol, reader, admin, q):
    for user in (alice, bob, carol, reader, admin):
        _check(user, q)


def test_activity_about_a_private_person_hides_the_name(alice, bob):
    secret = person_create(actor=alice, first_name="Secret", last_name="Client", visibility="private")
    activity_log(actor=alice, kind="note", subject="Pricing question", person=secret, visibility="everyone")
    [result] = next(g for g in global_search(bob, "pricing") if g.key == "activities").results
    assert "Secret" not in result.subtitle and result.title == "Pricing question"
    [result] = next(g for g in global_search(alice, "pricing") if g.key == "activities").results
    assert "Secret Client" in result.subtitle


def test_json_search_answers_for_short_and_hostile_text(alice_client):
    for q in ["", "a", '"*', "<script>", "a" * 500, "%_\\"]:
        response = alice_client.get("/search/", {"q": q, "format": "json"})
        assert response.status_code == 200
