"""Labelled files and the figures we judge sentiment by (macro recall: each class counts the
same, so a model cannot score well by calling everything neutral)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rapport.intelligence.analysis import SENTIMENTS

LABEL_ALIASES = {
    "negative": "negative", "neg": "negative",
    "neutral": "neutral", "neu": "neutral",
    "positive": "positive", "pos": "positive",
}  # fmt: skip


class LabelledFileError(ValueError):
    pass


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    macro_recall: float
    recall: dict[str, float]
    support: dict[str, int]


def read_labelled(path: str | Path, *, max_errors: int = 0) -> list[tuple[str, str]]:
    """Lines `text<TAB>label`. Bad lines raise with their number, so nothing is silently dropped."""
    rows: list[tuple[str, str]] = []
    errors: list[str] = []
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise LabelledFileError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    text = raw.decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        content, sep, label = line.rpartition("\t")
        norm = LABEL_ALIASES.get(label.strip().lower())
        if not sep or norm is None:
            errors.append(f"line {number}: expected text<TAB>negative|neutral|positive")
            continue
        rows.append((content, norm))
    if len(errors) > max_errors:
        shown = "; ".join(errors[:5])
        raise LabelledFileError(f"{len(errors)} bad line(s) in {path}: {shown}")
    if not rows:
        raise LabelledFileError(f"No labelled lines in {path}.")
    return rows


def score(gold: Sequence[str], predicted: Sequence[str]) -> Scores:
    support = {label: 0 for label in SENTIMENTS}
    hits = {label: 0 for label in SENTIMENTS}
    for g, p in zip(gold, predicted, strict=True):
        support[g] += 1
        if g == p:
            hits[g] += 1
    present = [label for label in SENTIMENTS if support[label]]
    recall = {label: hits[label] / support[label] for label in present}
    n = len(gold)
    return Scores(
        n=n,
        accuracy=sum(hits.values()) / n if n else 0.0,
        macro_recall=sum(recall.values()) / len(present) if present else 0.0,
        recall=recall,
        support=support,
    )


def folds(labels: Sequence[str], k: int, seed: int = 0) -> list[list[int]]:
    """Stratified, shuffled, deterministic folds: every fold gets its share of each label
    (files are often sorted by label, date or source; plain blocks or strides would give a
    fold with one label only)."""
    rnd = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        rnd.shuffle(members)
        for i in members:
            out[dealt % k].append(i)
            dealt += 1
    return [sorted(f) for f in out]
