"""The learned backend: trained from corrections and files, used only where CV shows it is better."""

import pytest

from rapport.intelligence import learned
from rapport.intelligence.actions import correction_record, sentiment_model_train
from rapport.intelligence.analysis import analyse, forget_active_model, get_backend
from rapport.intelligence.models import Correction, SentimentModel
from rapport.intelligence.tests.factories import lexicon_obvious, separable

pytest.importorskip("numpy", reason="the learned backend needs NumPy")


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_active_model()
    yield
    forget_active_model()


def test_beats_trivial_baseline_on_separable_set_and_becomes_active(db):
    rows = separable()
    result = sentiment_model_train(examples=rows, folds=5)
    m = result.model
    assert m.baseline_macro_recall == pytest.approx(1 / 3, abs=0.01)  # rules: all neutral
    assert m.cv_macro_recall >= 0.9
    assert m.active
    r = analyse("ruxa sarp zorp tolen")
    assert (r.backend, r.sentiment) == ("learned", "negative")
    assert analyse("mibo quomba fesh").sentiment == "positive"


def test_not_activated_when_it_does_not_beat_the_rules(db):
    first = sentiment_model_train(examples=separable(), folds=5).model
    assert first.active
    second = sentiment_model_train(examples=lexicon_obvious(), folds=5).model
    assert second.baseline_macro_recall >= 0.95
    assert not second.active
    first.refresh_from_db()
    assert not first.active  # the newest verdict stands
    assert analyse("what a great day").backend == "default"
    assert SentimentModel.objects.filter(active=True).count() == 0


def test_model_round_trips_through_the_database_without_pickle(db):
    rows = separable(20)
    model = learned.fit([t for t, _ in rows], [label for _, label in rows])
    again = learned.Model.from_bytes(model.to_bytes())
    texts = ["zorp mibo", "blick ruxa", "tarn fesh"]
    readings = [learned.read(t) for t in texts]
    assert learned.predict(again, texts, readings) == learned.predict(model, texts, readings)
    assert again.has_seen(rows[0][0])
    assert not again.has_seen("a text it never saw")


def test_training_uses_corrections_and_latest_correction_wins(db, alice):
    correction_record(user=alice, text="frell mibo", label="negative")
    correction_record(user=alice, text="frell mibo", label="positive")
    correction_record(user=alice, text="tarn obru", label="neutral")
    examples = dict(learned.training_examples([("zorp kalu", "negative")]))
    assert examples == {"frell mibo": "positive", "tarn obru": "neutral", "zorp kalu": "negative"}


def test_too_few_examples_is_a_clear_error(db):
    from rapport.core.errors import ActionError

    with pytest.raises(ActionError, match="at least"):
        sentiment_model_train(examples=separable(3), folds=5)
    assert SentimentModel.objects.count() == 0


def test_learned_backend_unavailable_without_an_active_model(db):
    from rapport.intelligence.analysis import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="train one"):
        get_backend("learned")


def test_correction_records_prediction_and_refuses_read_only(db, alice, reader):
    from rapport.core.errors import ActionError

    c = correction_record(user=alice, text="not good", label="negative")
    assert c.predicted == "negative" and c.user == alice
    with pytest.raises(ActionError):
        correction_record(user=reader, text="fine", label="positive")
    with pytest.raises(ActionError):
        correction_record(user=alice, text="fine", label="ecstatic")
    assert Correction.objects.count() == 1
