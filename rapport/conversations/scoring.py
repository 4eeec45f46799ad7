"""Sentiment and urgency for a message, through the one text-intelligence interface shared
with listening (`rapport.intelligence`). Imported lazily: if it is absent or fails, the inbox
keeps working with a neutral score rather than losing the message."""

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    sentiment: str = "neutral"  # negative | neutral | positive
    score: float = 0.0  # -1 … 1
    urgency: str = "normal"  # low | normal | high
    intent: str = "other"


NEUTRAL = Score()


def _analyser():
    try:
        from rapport import intelligence

        fn = getattr(intelligence, "analyse", None)
        if fn is None:
            from rapport.intelligence.analysis import analyse as fn  # type: ignore[no-redef]
        return fn
    except Exception:  # noqa: BLE001 - a missing or broken module must not stop ingest
        return None


def score(text: str) -> Score:
    if not text or not text.strip():
        return NEUTRAL
    analyse = _analyser()
    if analyse is None:
        return NEUTRAL
    try:
        result = analyse(text[:20000])
    except Exception:
        log.exception("text analysis failed; scoring as neutral")
        return NEUTRAL
    return Score(
        sentiment=str(getattr(result, "sentiment", "neutral"))[:10],
        score=float(getattr(result, "score", 0.0) or 0.0),
        urgency=str(getattr(result, "urgency", "normal"))[:10],
        intent=str(getattr(result, "intent", "other"))[:20],
    )
