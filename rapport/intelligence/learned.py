"""The learned backend: logistic regression trained on this installation's labelled examples.

Features are word uni/bigrams (negation-marked), character 3–5-grams inside words, and the
offline rules' own reading of the text (score, positive and negative mass, its label), so the
model starts from what the rules know and learns the installation's own vocabulary on top.
Multinomial logistic regression with balanced class weights and L2, fitted by full-batch
Adam in NumPy. A model is made active only when k-fold cross-validation on the training
examples beats the rules on the same examples; otherwise it is kept, inactive, as a record.

Stored as an .npz (loaded with `allow_pickle=False`: a database blob is never unpickled).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapport.intelligence.analysis import (
    SENTIMENTS,
    RuleBackend,
    Sentiment,
    forget_active_model,
    label_for,
    read,
)
from rapport.intelligence.metrics import folds, score
from rapport.intelligence.rules import _TOKEN, MAX_CHARS, NEGATIONS, Reading

# Activation needs a real margin, not noise: one point of macro recall.
MIN_GAIN = 0.01
MIN_EXAMPLES = 30
# Chosen by 5-fold CV on the TweetEval development set (docs/intelligence.md).
DEFAULTS = {
    "l2": 3e-3,
    "iterations": 250,
    "learning_rate": 0.05,
    "lexicon_weight": 2.0,
    "word_weight": 2.0,
    "char_weight": 1.0,
    "min_df": 2,
}

_BOUNDARY = frozenset(".;:,!?")


def _tokens(text: str) -> list[str]:
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS // 2] + " . " + text[-MAX_CHARS // 2 :]
    out: list[str] = []
    negating = False
    for tok in _TOKEN.findall(text):
        c = tok[0]
        if c in _BOUNDARY:
            negating = False
            out.append(tok[0])
            continue
        low = tok.lower().replace("’", "'")
        if c == "@":
            low = "<user>"
        elif low.startswith(("http", "www.")):
            low = "<url>"
        elif c.isdigit():
            low = "<num>"
        elif c == "#":
            out.append(low)
            low = low[1:]
        if negating:
            out.append("not_" + low)
        else:
            out.append(low)
        if low in NEGATIONS or low.endswith("n't"):
            negating = True
    return out


def _sparse_features(text: str) -> set[str]:
    toks = _tokens(text)
    feats = {"w:" + t for t in toks}
    feats.update("b:" + a + " " + b for a, b in zip(toks, toks[1:], strict=False))
    for t in toks:
        if t[0] in "<#!?" or len(t) < 2:
            continue
        padded = f" {t[4:] if t.startswith('not_') else t} "
        for n in (3, 4, 5):
            feats.update("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return feats


_N_DENSE = 8


def _dense(r: Reading) -> list[float]:
    label = label_for(r.compound)
    return [
        r.compound,
        min(r.pos, 10.0) / 5,
        max(r.neg, -10.0) / 5,
        1.0 if label == "negative" else 0.0,
        1.0 if label == "neutral" else 0.0,
        1.0 if label == "positive" else 0.0,
        1.0 if r.question else 0.0,
        1.0,  # bias
    ]


def _digest(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.strip().encode("utf-8", "replace"), digest_size=8).digest(), "little"
    )


@dataclass
class Model:
    vocab: dict[str, int]
    weights: Any  # (len(vocab) + _N_DENSE, 3) float32
    lexicon_weight: float
    seen: Any  # sorted uint64 digests of the training texts
    word_weight: float = 1.0
    char_weight: float = 1.0

    def design(self, texts: Sequence[str], readings: Sequence[Reading]) -> tuple[Any, Any, Any]:
        """CSR parts (indptr, indices, values) of the feature matrix."""
        import numpy as np

        vocab = self.vocab
        base = len(vocab)
        lw = self.lexicon_weight
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for text, r in zip(texts, readings, strict=True):
            feats = _sparse_features(text)
            words = [vocab[f] for f in feats if f[0] != "c" and f in vocab]
            chars = [vocab[f] for f in feats if f[0] == "c" and f in vocab]
            for block, weight in ((words, self.word_weight), (chars, self.char_weight)):
                if block:
                    v = weight / len(block) ** 0.5
                    indices.extend(block)
                    values.extend([v] * len(block))
            indices.extend(range(base, base + _N_DENSE))
            values.extend(x * lw for x in _dense(r))
            indptr.append(len(indices))
        return (
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(values, dtype=np.float32),
        )

    def probabilities(self, texts: Sequence[str], readings: Sequence[Reading]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        indptr, indices, values = self.design(texts, readings)
        return _softmax(_scores(self.weights, indptr, indices, values))

    def to_bytes(self) -> bytes:
        import numpy as np

        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            weights=self.weights.astype(np.float32),
            vocab=np.array(terms, dtype=str),
            seen=self.seen,
            meta=np.array(
                json.dumps(
                    {
                        "format": 1,
                        "lexicon_weight": self.lexicon_weight,
                        "word_weight": self.word_weight,
                        "char_weight": self.char_weight,
                    }
                )
            ),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes | memoryview) -> Model:
        import numpy as np

        with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            terms = data["vocab"].tolist()
            return cls(
                vocab={t: i for i, t in enumerate(terms)},
                weights=data["weights"],
                lexicon_weight=float(meta["lexicon_weight"]),
                word_weight=float(meta["word_weight"]),
                char_weight=float(meta["char_weight"]),
                seen=data["seen"],
            )

    def has_seen(self, text: str) -> bool:
        import numpy as np

        d = np.uint64(_digest(text))
        i = int(np.searchsorted(self.seen, d))
        return i < len(self.seen) and self.seen[i] == d


def _scores(weights: Any, indptr: Any, indices: Any, values: Any) -> Any:
    import numpy as np

    contrib = weights[indices] * values[:, None]
    return np.add.reduceat(contrib, indptr[:-1], axis=0)


def _softmax(z: Any) -> Any:
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit(
    texts: Sequence[str], labels: Sequence[str], readings: Sequence[Reading] | None = None, **params: Any
) -> Model:
    import numpy as np

    p = {**DEFAULTS, **params}
    if readings is None:
        readings = [read(t) for t in texts]
    df: dict[str, int] = {}
    for t in texts:
        for f in _sparse_features(t):
            df[f] = df.get(f, 0) + 1
    terms = sorted(f for f, c in df.items() if c >= p["min_df"])
    vocab = {f: i for i, f in enumerate(terms)}
    dim = len(vocab) + _N_DENSE
    model = Model(
        vocab=vocab,
        weights=np.zeros((dim, 3), dtype=np.float64),
        lexicon_weight=p["lexicon_weight"],
        word_weight=p["word_weight"],
        char_weight=p["char_weight"],
        seen=np.unique(np.array([_digest(t) for t in texts], dtype=np.uint64)),
    )
    indptr, indices, values = model.design(texts, readings)
    values = values.astype(np.float64)
    y = np.array([SENTIMENTS.index(label) for label in labels])
    n = len(y)
    counts = np.bincount(y, minlength=3).astype(np.float64)
    # balanced class weights: each class carries the same total weight, as macro recall does
    sample_w = (n / (3 * np.maximum(counts, 1)))[y] / n
    onehot = np.eye(3)[y]
    rows = np.repeat(np.arange(n), np.diff(indptr))
    w = model.weights
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    lr, l2 = p["learning_rate"], p["l2"]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, p["iterations"] + 1):
        prob = _softmax(_scores(w, indptr, indices, values))
        resid = (prob - onehot) * sample_w[:, None]
        grad = np.empty_like(w)
        per_nnz = resid[rows] * values[:, None]
        for c in range(3):
            grad[:, c] = np.bincount(indices, weights=per_nnz[:, c], minlength=dim)
        grad += l2 * w
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        w -= lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
    model.weights = w.astype(np.float32)
    return model


def predict(model: Model, texts: Sequence[str], readings: Sequence[Reading]) -> list[Sentiment]:
    prob = model.probabilities(texts, readings)
    out: list[Sentiment] = []
    for row in prob.tolist():
        k = max(range(3), key=row.__getitem__)
        out.append((SENTIMENTS[k], round(row[2] - row[0], 4), round(row[k], 4)))
    return out


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    macro_recall: float
    accuracy: float
    baseline_macro_recall: float
    baseline_accuracy: float
    recall: dict[str, float]
    predicted: list[str]


def cross_validate(texts: Sequence[str], labels: Sequence[str], k: int = 5, **params: Any) -> CrossValidation:
    """k-fold CV of the learned model, and the rules on the same texts for comparison."""
    if len(texts) < max(k, MIN_EXAMPLES):
        raise ValueError(f"Need at least {max(k, MIN_EXAMPLES)} labelled examples, got {len(texts)}.")
    readings = [read(t) for t in texts]
    predicted = [""] * len(texts)
    for held in folds(labels, k):
        held_set = set(held)
        train = [i for i in range(len(texts)) if i not in held_set]
        model = fit(
            [texts[i] for i in train], [labels[i] for i in train], [readings[i] for i in train], **params
        )
        for i, (label, _, _) in zip(
            held, predict(model, [texts[i] for i in held], [readings[i] for i in held]), strict=True
        ):
            predicted[i] = label
    learned = score(labels, predicted)
    baseline = score(labels, [s[0] for s in RuleBackend().sentiments(texts, readings)])
    return CrossValidation(
        folds=k,
        macro_recall=learned.macro_recall,
        accuracy=learned.accuracy,
        baseline_macro_recall=baseline.macro_recall,
        baseline_accuracy=baseline.accuracy,
        recall=learned.recall,
        predicted=predicted,
    )


class LearnedBackend:
    name = "learned"

    def __init__(self, model: Model, model_id: int | None = None) -> None:
        self.model = model
        self.model_id = model_id

    def sentiments(self, texts: Sequence[str], readings: Sequence[Reading]) -> list[Sentiment]:
        return predict(self.model, texts, readings)


def active_backend() -> LearnedBackend | None:
    from rapport.intelligence.models import SentimentModel

    row = SentimentModel.objects.filter(active=True).only("id", "blob").first()
    if row is None:
        return None
    try:
        return LearnedBackend(Model.from_bytes(row.blob), row.pk)
    except (ImportError, ValueError, KeyError, OSError):
        # NumPy missing or a damaged blob: fall back to the rules rather than fail analysis
        return None


def training_examples(extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """Agents' corrections (the latest word on a text wins) plus any labelled lines given."""
    from rapport.intelligence.models import Correction

    latest: dict[str, str] = {}
    for text, label in extra:
        latest[text.strip()] = label
    for text, label in Correction.objects.order_by("created_at", "id").values_list("text", "label"):
        latest[text.strip()] = label
    return [(t, label) for t, label in latest.items() if t]


def forget_cache() -> None:
    forget_active_model()
