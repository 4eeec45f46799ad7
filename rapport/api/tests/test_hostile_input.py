"""Every write endpoint, fed wrong types, huge values and junk: always a 4xx, never a 500.
(The test client re-raises server exceptions, so a crash fails the test loudly.)"""

import pytest

from rapport.activities.actions import activity_log
from rapport.api import schemas
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create, pipeline_ensure_default, product_create

JUNK = [
    None,
    -1,
    0,
    10**30,
    1.5,
    True,
    "",
    "x" * 70_000,
    "\x00",
    "😀" * 300,
    [],
    {},
    [1, "a"],
    {"a": {"b": 1}},
]


@pytest.fixture
def world(alice, carol):
    pipeline_ensure_default()
    person = person_create(actor=alice, first_name="P")
    org = organisation_create(actor=alice, name="O")
    deal = deal_create(actor=alice, name="D")
    act = activity_log(actor=alice, kind="task", subject="T", person=person)
    product_create(actor=carol, name="Prod", sku="SKU")
    return {"person": person.pk, "org": org.pk, "deal": deal.pk, "act": act.pk}


def _targets(w):
    return [
        ("post", "/people", schemas.PersonCreate),
        ("patch", f"/people/{w['person']}", schemas.PersonPatch),
        ("post", f"/people/{w['person']}/identities", schemas.IdentityIn),
        ("post", f"/people/{w['person']}/relationships", schemas.RelationshipIn),
        ("post", "/organisations", schemas.OrganisationCreate),
        ("patch", f"/organisations/{w['org']}", schemas.OrganisationPatch),
        ("post", f"/organisations/{w['org']}/orders", schemas.OrderIn),
        ("post", "/deals", schemas.DealCreate),
        ("patch", f"/deals/{w['deal']}", schemas.DealPatch),
        ("post", f"/deals/{w['deal']}/move", schemas.DealMove),
        ("post", f"/deals/{w['deal']}/participants", schemas.ParticipantIn),
        ("post", "/pipelines", schemas.PipelineIn),
        ("post", "/products", schemas.ProductIn),
        ("post", "/activities", schemas.ActivityCreate),
        ("patch", f"/activities/{w['act']}", schemas.ActivityPatch),
        ("post", f"/activities/{w['act']}/complete", schemas.TaskComplete),
    ]


def test_junk_in_every_field_of_every_write_is_a_4xx(carol_api, world, alice):
    # Carol (manager of North) may write everything Alice made, so requests reach the actions.
    checked = 0
    for method, path, schema in _targets(world):
        send = getattr(carol_api, method)
        for raw in ["", "null", "[]", '"x"', "{", "1e999"]:
            assert send(path, raw=raw).status_code < 500, (method, path, raw)
        for field in schema.model_fields:
            for value in JUNK:
                r = send(path, {field: value})
                assert r.status_code < 500, (method, path, field, value)
                assert r["Content-Type"].startswith("application/json")
                checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    "path",
    [
        "/people/x",
        "/people/-1",
        "/people/1.5",
        f"/people/{10**40}",
        "/deals/%00",
        "/organisations/1e3",
        "/activities/ ",
    ],
)
def test_odd_ids_in_the_path_are_4xx(alice_api, path):
    for send in (alice_api.get, alice_api.delete):
        assert 400 <= send(path).status_code < 500


@pytest.mark.parametrize(
    "query",
    [
        {"organisation": "x"},
        {"owner": 10**30},
        {"vip": "maybe"},
        {"sort": "id; DROP TABLE people_person"},
        {"tag": "\x00"},
        {"q": "%' OR 1=1 --"},
        {"q": "+44"},
        {"q": "@"},
        {"limit": "1e3"},
    ],
)
def test_odd_list_filters_are_never_a_500(alice_api, world, query):
    for path in ("/people", "/organisations", "/deals", "/activities", "/products"):
        assert alice_api.get(path, **query).status_code < 500
