"""Automatic retraining from agents' corrections: when it is due, that it reuses the CV rule,
that it never displaces a bigger hand-trained model, and what the page and API show."""

import json

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from conftest import login
from rapport.intelligence.actions import (
    correction_record,
    retrain_state,
    sentiment_model_train,
    sentiment_retrain,
)
from rapport.intelligence.analysis import analyse, forget_active_model
from rapport.intelligence.models import Correction, SentimentModel
from rapport.intelligence.tests.factories import lexicon_obvious, separable

pytest.importorskip("numpy", reason="the learned backend needs NumPy")


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.RAPPORT_SENTIMENT_RETRAIN_AFTER = 30
    forget_active_model()
    yield
    forget_active_model()


def correct(user, rows):
    for text, label in rows:
        correction_record(user=user, text=text, label=label)


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_new_corrections_queues_one_retraining(alice):
    rows = separable(20)  # 60 corrections
    correct(alice, rows[:29])
    assert not DBTaskResult.objects.exists() and not retrain_state().due
    correct(alice, rows[29:31])  # the 30th completes a batch: queued once, not again at 31
    queued = DBTaskResult.objects.all()
    assert [t.task_path for t in queued] == ["rapport.intelligence.tasks.retrain_sentiment"]


@pytest.mark.django_db
def test_retraining_activates_only_when_cv_beats_the_rules(alice):
    assert sentiment_retrain() is None  # nothing yet
    Correction.objects.bulk_create(
        [Correction(text=t, label=label, user=alice) for t, label in separable(20)]
    )
    state = retrain_state()
    assert (state.corrections, state.new_corrections, state.due) == (60, 60, True)
    result = sentiment_retrain()
    m = result.model
    assert (m.trigger, m.examples, m.corrections, m.active) == ("automatic", 60, 60, True)
    assert "beats the rules" in m.note
    assert analyse("ruxa sarp zorp tolen").backend == "learned"
    state = retrain_state()
    assert (state.new_corrections, state.due, state.active.pk) == (0, False, m.pk)
    assert "30 more new correction(s)" in state.waiting_for
    assert sentiment_retrain() is None
    # Corrections the rules already get right: the next model does not beat them and the
    # rules are back in use (the newest verdict stands, as for a manual training).
    Correction.objects.all().delete()
    Correction.objects.bulk_create(
        [Correction(text=t, label=label, user=alice) for t, label in lexicon_obvious(12)]
    )
    second = sentiment_retrain().model
    assert not second.active and "does not beat" in second.note
    assert not SentimentModel.objects.filter(active=True).exists()


@pytest.mark.django_db
def test_an_automatic_model_never_displaces_a_bigger_hand_trained_one(alice):
    manual = sentiment_model_train(examples=separable(40), folds=5).model
    assert manual.active and manual.trigger == "manual"
    Correction.objects.bulk_create(
        [Correction(text=t, label=label, user=alice) for t, label in separable(12, seed=3)]
    )
    auto = sentiment_retrain(force=True).model
    manual.refresh_from_db()
    assert manual.active and not auto.active
    assert auto.note.startswith(f"kept model {manual.pk}")


@pytest.mark.django_db
def test_retrain_command_reports_when_not_due(alice):
    from io import StringIO

    out = StringIO()
    call_command("sentiment", "retrain", stdout=out)
    assert "Not retrained: 30 more correction(s) before a first training" in out.getvalue()
    assert json.loads(out.getvalue().splitlines()[-1]) == {"retrained": False, "corrections": 0}


@pytest.mark.django_db
def test_settings_page_and_api_show_the_state(alice, alice_client, carol, reader):
    Correction.objects.bulk_create(
        [Correction(text=t, label=label, user=alice) for t, label in separable(20)]
    )
    sentiment_retrain()
    page = alice_client.get("/settings/intelligence/")
    body = page.content.decode()
    assert page.status_code == 200 and "Learned model" in body and "Automatic" in body
    assert "Retrain now" not in body and 'style="' not in body
    assert alice_client.post("/settings/intelligence/").status_code == 403
    assert login(reader).post("/settings/intelligence/").status_code == 403
    status = alice_client.get("/api/v1/intelligence/status").json()
    assert status["backend"] == "learned" and status["active_model"]["trigger"] == "automatic"
    assert status["corrections"] == 60 and status["new_corrections"] == 0 and status["due"] is False
    assert status["active_model"]["cv_macro_recall"] > status["active_model"]["baseline_macro_recall"]
    assert alice_client.post("/api/v1/intelligence/retrain").status_code == 403
    manager = login(carol)
    assert "Retrain now" in manager.get("/settings/intelligence/").content.decode()
    assert manager.post("/api/v1/intelligence/retrain").status_code == 202
    assert manager.post("/settings/intelligence/").status_code == 302
    assert DBTaskResult.objects.count() == 2
