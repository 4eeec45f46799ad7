"""The optional transformer backend, on a tiny random BERT made here (never downloaded)."""

import pytest

from rapport.intelligence.analysis import BackendUnavailable, analyse_many
from rapport.intelligence.transformer import TransformerBackend, _label_map


def test_label_names_map_to_sentiments():
    assert _label_map({0: "NEGATIVE", 1: "POSITIVE"}) == ["negative", "positive"]
    assert _label_map({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}) == ["negative", "neutral", "positive"]
    with pytest.raises(BackendUnavailable):
        _label_map({0: "a", 1: "b", 2: "c", 3: "d"})


def test_missing_directory_is_unavailable_not_a_crash(tmp_path):
    with pytest.raises(BackendUnavailable):
        TransformerBackend.load(tmp_path / "absent")


def test_no_directory_configured_is_unavailable(settings):
    settings.RAPPORT_MODEL_DIR = None
    with pytest.raises(BackendUnavailable, match="RAPPORT_MODEL_DIR"):
        TransformerBackend.load(None)


@pytest.fixture
def tiny_model_dir(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed (optional: the transformer backend)")
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (optional: the transformer backend)"
    )
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "the", "service", "is", "not"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    transformers.BertTokenizer(str(vocab)).save_pretrained(tmp_path)
    return tmp_path


def test_tiny_local_model_analyses_without_network(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    backend = TransformerBackend.load(tiny_model_dir)
    texts = ["the service is good", "", "🙂", "bad " * 2000]
    results = analyse_many(texts, backend=backend)
    assert [r.backend for r in results] == ["transformer"] * 4
    for r in results:
        assert r.sentiment in ("negative", "neutral", "positive")
        assert -1 <= r.score <= 1 and 0 <= r.sentiment_confidence <= 1
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # loading switched the hub off
    # intent and urgency still come from the rules
    assert analyse_many(["I want to cancel my subscription"], backend=backend)[0].intent == "churn_intent"
