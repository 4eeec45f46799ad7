"""POST /intelligence/analyse, POST /intelligence/corrections, GET /intelligence/models."""

import json

import pytest
from django.test import Client

from rapport.accounts.models import ApiToken
from rapport.intelligence.actions import sentiment_model_train
from rapport.intelligence.analysis import forget_active_model
from rapport.intelligence.models import Correction
from rapport.intelligence.tests.factories import separable


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    forget_active_model()
    yield
    forget_active_model()


def client_for(user) -> Client:
    _, raw = ApiToken.issue(user=user, name="tests")
    return Client(headers={"authorization": f"Bearer {raw}"})


def post(client, path, data):
    return client.post(f"/api/v1{path}", json.dumps(data), content_type="application/json")


def test_analyse_one_text(db, alice):
    r = post(client_for(alice), "/intelligence/analyse", {"text": "I want to cancel my subscription"})
    assert r.status_code == 200
    (a,) = r.json()["analyses"]
    assert a["intent"] == "churn_intent" and a["urgency"] == "high" and a["backend"] == "default"
    assert set(a) >= {"sentiment", "score", "sentiment_confidence", "intent_confidence", "urgency_confidence"}


def test_analyse_many_texts_in_order(db, alice):
    r = post(client_for(alice), "/intelligence/analyse", {"texts": ["not good", "great!", "", "🙂"]})
    assert r.status_code == 200
    assert [a["sentiment"] for a in r.json()["analyses"]] == ["negative", "positive", "neutral", "positive"]


@pytest.mark.parametrize(
    "body",
    [{}, {"text": "a", "texts": ["b"]}, {"text": "a", "backend": "magic"}, {"texts": ["x"] * 1001}],
    ids=["neither", "both", "unknown-backend", "too-many"],
)
def test_analyse_rejects_bad_input_with_json_error(db, alice, body):
    r = post(client_for(alice), "/intelligence/analyse", body)
    assert r.status_code == 422
    assert "detail" in r.json()


def test_analyse_learned_without_model_is_400(db, alice):
    r = post(client_for(alice), "/intelligence/analyse", {"text": "hi", "backend": "learned"})
    assert r.status_code == 400
    assert "train" in r.json()["detail"]


def test_analyse_needs_authentication(db):
    r = post(Client(), "/intelligence/analyse", {"text": "hi"})
    assert r.status_code == 401


def test_correction_is_stored_with_source(db, alice):
    from rapport.people.models import Person

    person = Person.objects.create(owner=alice, first_name="Ada", last_name="Lovelace")
    r = post(
        client_for(alice),
        "/intelligence/corrections",
        {
            "text": "well that was something",
            "label": "negative",
            "object_type": "people.person",
            "object_id": person.pk,
        },
    )
    assert r.status_code == 201, r.content
    c = Correction.objects.get()
    assert (c.label, c.object_type, c.object_id, c.user) == ("negative", "people.person", person.pk, alice)
    assert r.json()["predicted"] == c.predicted


def test_correction_pointing_at_invisible_record_is_404_and_stores_nothing(db, alice, bob):
    from rapport.people.models import Person

    private = Person.objects.create(owner=bob, first_name="Secret", last_name="S", visibility="private")
    r = post(
        client_for(alice),
        "/intelligence/corrections",
        {"text": "meh", "label": "neutral", "object_type": "people.person", "object_id": private.pk},
    )
    assert r.status_code == 404
    assert not Correction.objects.exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "x", "label": "ecstatic"}, 422),
        ({"text": "   ", "label": "neutral"}, 400),
        ({"text": "x", "label": "neutral", "object_type": "accounts.user", "object_id": 1}, 400),
        ({"text": "x", "label": "neutral", "object_type": "nope.nothing", "object_id": 1}, 400),
        ({"text": "x", "label": "neutral", "object_type": "people.person"}, 400),
    ],
    ids=["label", "blank", "not-owned-record", "unknown-type", "half-ref"],
)
def test_bad_corrections_are_refused_and_store_nothing(db, alice, body, status):
    r = post(client_for(alice), "/intelligence/corrections", body)
    assert r.status_code == status
    assert not Correction.objects.exists()


def test_read_only_user_cannot_correct(db, reader):
    r = post(client_for(reader), "/intelligence/corrections", {"text": "x", "label": "neutral"})
    assert r.status_code == 403
    assert not Correction.objects.exists()


def test_models_list_shows_cv_figures_and_which_is_active(db, alice):
    model = sentiment_model_train(examples=separable(15), folds=3).model
    r = client_for(alice).get("/api/v1/intelligence/models")
    assert r.status_code == 200
    (row,) = r.json()
    assert row["id"] == model.pk and row["active"] is True
    assert row["cv_macro_recall"] > row["baseline_macro_recall"]
    assert "blob" not in row
