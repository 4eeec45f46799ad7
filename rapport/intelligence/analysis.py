"""The one interface the inbox and listening use: `analyse(text)` and `analyse_many(texts)`.

Sentiment comes from a backend (offline rules by default, a learned model where it has
proved better, or a local transformer); intent and urgency always come from the rules, which
read the text once for all three. Analysis never raises on text: empty, emoji-only, binary
junk or megabyte pastes all give an answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from rapport.intelligence.rules import Reading, RuleAnalyser

SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "purchase_intent", "churn_intent", "praise", "other")
URGENCIES = ("low", "normal", "high")
BACKENDS = ("auto", "default", "learned", "transformer")

# Tuned on the even lines of the TweetEval development set, checked on the odd lines
# (docs/intelligence.md has the figures). Negative has the lower bar because a complaint
# missed costs more than a neutral message read twice.
NEG_THRESHOLD = -0.2
POS_THRESHOLD = 0.35


@dataclass(frozen=True, slots=True)
class Analysis:
    sentiment: str  # negative | neutral | positive
    score: float  # -1 … 1
    intent: str  # one of INTENTS
    urgency: str  # low | normal | high
    sentiment_confidence: float
    intent_confidence: float
    urgency_confidence: float
    backend: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# A backend's sentiment for one text: (label, score in [-1, 1], confidence in [0, 1]).
Sentiment = tuple[str, float, float]


class SentimentBackend(Protocol):
    name: str

    def sentiments(self, texts: Sequence[str], readings: Sequence[Reading]) -> list[Sentiment]: ...


class BackendUnavailable(Exception):
    """The requested backend cannot run here (no model trained, library not installed…)."""


def label_for(compound: float) -> str:
    if compound >= POS_THRESHOLD:
        return "positive"
    if compound <= NEG_THRESHOLD:
        return "negative"
    return "neutral"


def rule_confidence(compound: float) -> float:
    """How far the score sits inside its band, 0.4 … 1. A heuristic, not a calibrated probability."""
    if compound >= POS_THRESHOLD:
        margin = (compound - POS_THRESHOLD) / (1 - POS_THRESHOLD)
    elif compound <= NEG_THRESHOLD:
        margin = (NEG_THRESHOLD - compound) / (1 + NEG_THRESHOLD)
    else:
        middle = (POS_THRESHOLD + NEG_THRESHOLD) / 2
        half = (POS_THRESHOLD - NEG_THRESHOLD) / 2
        margin = 1 - abs(compound - middle) / half
    return round(0.4 + 0.6 * min(1.0, max(0.0, margin)), 3)


class RuleBackend:
    name = "default"

    def sentiments(self, texts: Sequence[str], readings: Sequence[Reading]) -> list[Sentiment]:
        return [(label_for(r.compound), round(r.compound, 4), rule_confidence(r.compound)) for r in readings]


def _intent(reading: Reading, sentiment: str) -> tuple[str, float]:
    cues = reading.cues
    counts = {c: cues.count(c) for c in set(cues)}

    def conf(k: int) -> float:
        return round(min(0.95, 0.55 + 0.15 * k), 3)

    if counts.get("churn_intent"):
        return "churn_intent", conf(counts["churn_intent"] + counts.get("churn_weak", 0))
    if counts.get("churn_weak") and sentiment != "positive":
        return "churn_intent", conf(counts["churn_weak"] - 1)
    if counts.get("complaint") and sentiment != "positive":
        return "complaint", conf(counts["complaint"])
    if counts.get("purchase_intent") and sentiment != "negative":
        return "purchase_intent", conf(counts["purchase_intent"])
    if sentiment == "negative" and reading.compound <= -0.5:
        return "complaint", 0.5
    if reading.question:
        return "question", 0.7
    if counts.get("praise") and sentiment == "positive":
        return "praise", conf(counts["praise"])
    if sentiment == "positive" and reading.compound >= 0.6:
        return "praise", 0.5
    return "other", 0.5


def _urgency(reading: Reading, sentiment: str, intent: str) -> tuple[str, float]:
    if reading.urgent:
        return "high", round(min(0.95, 0.7 + 0.1 * reading.urgent), 3)
    if intent == "churn_intent":
        return "high", 0.7
    if intent == "complaint" and (
        reading.compound <= -0.6 or reading.exclaims >= 2 or reading.caps_words >= 2
    ):
        return "high", 0.6
    if intent in ("praise", "other") and sentiment != "negative":
        return "low", 0.6
    return "normal", 0.6


_rules = RuleAnalyser()
_default = RuleBackend()


def _combine(reading: Reading, sentiment: Sentiment, backend: str) -> Analysis:
    label, score, confidence = sentiment
    intent, intent_conf = _intent(reading, label)
    urgency, urgency_conf = _urgency(reading, label, intent)
    return Analysis(
        sentiment=label,
        score=max(-1.0, min(1.0, float(score))),
        intent=intent,
        urgency=urgency,
        sentiment_confidence=float(confidence),
        intent_confidence=intent_conf,
        urgency_confidence=urgency_conf,
        backend=backend,
    )


def _clean(text: object) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)


# The active learned model is looked up at most this often per process, so the hot path
# does not query the database for every message.
_ACTIVE_TTL = 60.0
_active_lock = threading.Lock()
_active: dict[str, object] = {"at": -1e9, "backend": None}


def forget_active_model() -> None:
    """Call after training or activation so this process picks up the new model at once."""
    with _active_lock:
        _active["at"] = -1e9
        _active["backend"] = None


def _auto_backend() -> SentimentBackend:
    from django.conf import settings

    preferred = getattr(settings, "RAPPORT_SENTIMENT_BACKEND", "auto")
    if preferred == "transformer":
        try:
            return get_backend("transformer")
        except BackendUnavailable:
            pass
    elif preferred == "default":
        return _default
    now = time.monotonic()
    with _active_lock:
        if now - float(_active["at"]) > _ACTIVE_TTL:  # type: ignore[arg-type]
            from rapport.intelligence.learned import active_backend

            _active["backend"] = active_backend()
            _active["at"] = now
        backend = _active["backend"]
    return backend if backend is not None else _default  # type: ignore[return-value]


def get_backend(name: str | None = None, *, model_dir: str | None = None) -> SentimentBackend:
    """`auto` (or None): the active learned model if one beat the rules, else the rules."""
    if name in (None, "auto"):
        return _auto_backend()
    if name == "default":
        return _default
    if name == "learned":
        from rapport.intelligence.learned import active_backend

        backend = active_backend()
        if backend is None:
            raise BackendUnavailable("No active learned model: train one with `rapport sentiment train`.")
        return backend
    if name == "transformer":
        from rapport.intelligence.transformer import TransformerBackend

        return TransformerBackend.load(model_dir)
    raise BackendUnavailable(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")


def read(text: str) -> Reading:
    return _rules.read(_clean(text))


def analyse_many(texts: Iterable[str], *, backend: str | SentimentBackend | None = None) -> list[Analysis]:
    items = [_clean(t) for t in texts]
    chosen = backend if backend is not None and not isinstance(backend, str) else get_backend(backend)
    readings = [_rules.read(t) for t in items]
    sentiments = chosen.sentiments(items, readings)
    return [_combine(r, s, chosen.name) for r, s in zip(readings, sentiments, strict=True)]


def analyse(text: str, *, backend: str | SentimentBackend | None = None) -> Analysis:
    return analyse_many([text], backend=backend)[0]
