"""`rapport sentiment eval|train`: figures for people, then one JSON line for scripts."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rapport.intelligence.models import SentimentModel
from rapport.intelligence.tests.factories import lexicon_obvious, separable, write_tsv


def run(*args) -> list[str]:
    out = StringIO()
    call_command("sentiment", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_eval_prints_figures_then_json_line_last(tmp_path):
    path = write_tsv(tmp_path / "set.tsv", lexicon_obvious(10))
    lines = run("eval", path)
    assert any("recall negative" in line for line in lines)
    assert any("texts/s" in line for line in lines)
    last = json.loads(lines[-1])
    assert last["backend"] == "default"
    assert last["n"] == 30
    assert last["macro_recall"] >= 0.95
    assert set(last) >= {"macro_recall", "accuracy", "texts_per_s", "backend", "n"}


def test_eval_part_selects_interleaved_lines(tmp_path):
    path = write_tsv(tmp_path / "set.tsv", lexicon_obvious(10))
    assert json.loads(run("eval", path, "--part", "1/2")[-1])["n"] == 15
    assert json.loads(run("eval", path, "--part", "2/3")[-1])["n"] == 10


def test_eval_learned_with_cross_validation(tmp_path, db):
    path = write_tsv(tmp_path / "set.tsv", separable(15))
    last = json.loads(run("eval", path, "--backend", "learned", "--cv", "3")[-1])
    assert last["backend"] == "learned" and last["cv"] == 3
    assert last["macro_recall"] > last["baseline_macro_recall"]
    assert SentimentModel.objects.count() == 0  # evaluating stores nothing


def test_train_then_eval_leaves_out_training_lines(tmp_path, db):
    train = separable(20, seed=1)
    path = write_tsv(tmp_path / "train.tsv", train)
    last = json.loads(run("train", path, "--cv", "3")[-1])
    assert last["active"] is True and last["examples"] == 60
    mixed = write_tsv(tmp_path / "mixed.tsv", train[:9] + separable(5, seed=99))
    lines = run("eval", mixed, "--backend", "learned")
    result = json.loads(lines[-1])
    assert result["excluded_trained_lines"] == 9
    assert result["n"] == 15


@pytest.mark.parametrize(
    "content", ["", "no tab here\n", "text\tecstatic\n"], ids=["empty", "no-tab", "bad-label"]
)
def test_bad_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError):
        run("eval", str(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("eval", str(tmp_path / "nope.tsv"))


def test_eval_a_stored_inactive_model_by_id(tmp_path, db):
    from rapport.intelligence.actions import sentiment_model_train
    from rapport.intelligence.tests.factories import lexicon_obvious

    model = sentiment_model_train(examples=lexicon_obvious(), folds=3).model
    assert not model.active
    path = write_tsv(tmp_path / "other.tsv", lexicon_obvious(5, seed=42))
    last = json.loads(run("eval", path, "--backend", "learned", "--model", str(model.pk))[-1])
    assert last["backend"] == "learned"
    with pytest.raises(CommandError, match="No learned model"):
        run("eval", path, "--backend", "learned", "--model", "999")
