"""The offline analyser: lexicon + rules in the manner of VADER, extended for service messages.

One pass over the tokens scores sentiment and collects intent/urgency cues, so intent and
urgency cost nothing extra and every backend can reuse them (`read`). Speed matters (the
inbox scores every incoming message, listening scores whole streams), so tokenising is one
compiled regex, and every per-token decision is a dict or set lookup.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from rapport.intelligence.lexicon import (
    BOOSTERS,
    CONTRASTS,
    EMOTICONS,
    NEGATIONS,
    PHRASES,
    WORD_CUES,
    emoji_lexicon,
    word_lexicon,
)

# Long enough for any real message; longer texts are scored on their head and tail, so a
# 10 MB paste costs the same as a long email and still sees the sign-off.
MAX_CHARS = 5000

_EMOTICON_RE = "|".join(re.escape(e) for e in sorted(EMOTICONS, key=len, reverse=True) if not e.isalpha())
_TOKEN = re.compile(
    r"(?:https?://|www\.)\S+"  # links say nothing about sentiment
    r"|[@#]\w+"
    rf"|(?:{_EMOTICON_RE})(?!\w)"
    r"|[^\W\d_]+(?:['’][^\W\d_]+)*"
    r"|\d+(?:[.,]\d+)*"
    r"|[!?]+"
    r"|[.;:,]"
    r"|[\u2190-\u2BFF\U0001F000-\U0001FAFF]",
    re.IGNORECASE,
)
_ELONGATED = re.compile(r"(\w)\1{2,}")
# A clause boundary stops negation and boosters from reaching across it.
_BOUNDARY = frozenset((".", ";", ":", ",", "!", "?"))
_QUESTION_STARTS = frozenset(
    (
        "how", "what", "when", "where", "why", "who", "which", "can", "could", "would", "will", "is",
        "are", "do", "does", "did", "should", "may", "any", "anyone", "anybody",
    )
)  # fmt: skip

NEG_SCALAR = -0.74
CAPS_INCR = 0.733
ALPHA = 15.0


@dataclass(slots=True, frozen=True)
class Reading:
    """What one pass over a text found: the rule score and the intent/urgency cues."""

    compound: float  # -1 … 1
    pos: float
    neg: float
    n_tokens: int
    cues: tuple[str, ...]  # intent cues in order of appearance
    urgent: int  # number of urgency cues
    question: bool
    exclaims: int
    caps_words: int


def _phrase_index() -> dict[str, list[tuple[tuple[str, ...], tuple[float | None, str, bool]]]]:
    index: dict[str, list[tuple[tuple[str, ...], tuple[float | None, str, bool]]]] = {}
    for phrase, value in PHRASES.items():
        words = tuple(phrase.split())
        index.setdefault(words[0], []).append((words, value))
    for entries in index.values():
        entries.sort(key=lambda e: -len(e[0]))  # longest match wins
    return index


class RuleAnalyser:
    def __init__(self) -> None:
        self.lex = word_lexicon()
        self.emoji = emoji_lexicon()
        self.phrases = _phrase_index()

    def read(self, text: str) -> Reading:
        return _read_cached(self, text)

    def _read(self, text: str) -> Reading:
        if len(text) > MAX_CHARS:
            text = text[: MAX_CHARS // 2] + " . " + text[-MAX_CHARS // 2 :]
        if "&" in text:
            text = html.unescape(text)  # tweets and feeds arrive with "&lt;3" and "&amp;"
        raw = _TOKEN.findall(text)
        lex = self.lex
        emoji = self.emoji
        phrases = self.phrases
        boosters = BOOSTERS
        negations = NEGATIONS
        word_cues = WORD_CUES
        boundary = _BOUNDARY

        n_alpha = 0
        n_caps = 0
        for t in raw:
            if t[0].isalpha():
                n_alpha += 1
                if t.isupper() and len(t) > 1:
                    n_caps += 1
        shouting_differs = 0 < n_caps < n_alpha

        lows: list[str] = []
        vals: list[float] = []
        cues: list[str] = []
        urgent = 0
        exclaims = 0
        question = False
        contrast_at = -1
        skip = 0
        n = len(raw)
        for i in range(n):
            tok = raw[i]
            c = tok[0]
            if c == "!" or c == "?":
                lows.append(c)
                vals.append(0.0)
                if c == "!":
                    exclaims += len(tok)
                else:
                    question = True
                    exclaims += tok.count("!")
                continue
            if c == "@" or c == "h" and tok.startswith(("http://", "https://")):
                lows.append("")
                vals.append(0.0)
                continue
            hashtag = c == "#"
            low = tok[1:].lower() if hashtag else tok.lower().replace("’", "'")
            lows.append(low)
            if skip:
                skip -= 1
                vals.append(0.0)
                continue
            entries = phrases.get(low)
            if entries is not None:
                scored = False
                for words, (valence, cue, urg) in entries:
                    k = len(words)
                    if k == 1 or (
                        i + k <= n
                        and all(raw[i + j].lower().replace("’", "'") == words[j] for j in range(1, k))
                    ):
                        if cue:
                            cues.append(cue)
                        if urg:
                            urgent += 1
                        if valence is not None:
                            skip = k - 1
                            vals.append(valence)
                            scored = True
                        break
                if scored:
                    continue
            wc = word_cues.get(low)
            if wc is not None:
                if wc[0]:
                    cues.append(wc[0])
                if wc[1]:
                    urgent += 1
            v = lex.get(low)
            emphasis = 0.0
            if v is None:
                if len(low) == 1:
                    v = emoji.get(low, 0.0)
                elif len(low) > 3 and _ELONGATED.search(low):
                    # "sooooo goooood": the stretched word is the word, said louder
                    two = _ELONGATED.sub(r"\1\1", low)
                    one = _ELONGATED.sub(r"\1", low)
                    v = lex.get(two)
                    if v is None:
                        v = lex.get(one)
                    if v is None:
                        b = boosters.get(one) or boosters.get(two)
                        v = 0.0
                        if b:
                            lows[-1] = "so"
                    else:
                        emphasis = 0.5
                else:
                    v = 0.0
            if v == 0.0 or low in boosters:
                if low in CONTRASTS:
                    contrast_at = i
                vals.append(0.0)
                continue
            sign = 1.0 if v > 0 else -1.0
            if emphasis:
                v += sign * emphasis
            if shouting_differs and tok.isupper() and len(tok) > 1:
                v += sign * CAPS_INCR
            if hashtag:
                v *= 1.2
            # look back up to three words for boosters and negation, within the clause
            j = i - 1
            dist = 0
            negated = False
            while j >= 0 and dist < 3:
                prev = lows[j]
                if prev in boundary:
                    break
                if prev:
                    b = boosters.get(prev)
                    if b is not None:
                        scale = (1.0, 0.95, 0.9)[dist]
                        v += sign * b * scale
                    elif prev in negations or prev.endswith("n't"):
                        negated = True
                    dist += 1
                j -= 1
            if negated:
                v *= NEG_SCALAR
            vals.append(v)

        if contrast_at >= 0:
            for k in range(len(vals)):
                if k < contrast_at:
                    vals[k] *= 0.5
                elif k > contrast_at:
                    vals[k] *= 1.5

        total = 0.0
        pos = 0.0
        neg = 0.0
        for v in vals:
            if v > 0:
                pos += v + 1
                total += v
            elif v < 0:
                neg += v - 1
                total += v
        if total and exclaims:
            amp = min(exclaims, 4) * 0.292
            total += amp if total > 0 else -amp
        compound = total / math.sqrt(total * total + ALPHA) if total else 0.0
        if not question and raw:
            first = raw[0].lower()
            question = first in _QUESTION_STARTS and len(raw) > 2 and "?" in text
        return Reading(
            compound=compound,
            pos=pos,
            neg=neg,
            n_tokens=len(lows),
            cues=tuple(cues),
            urgent=urgent,
            question=question,
            exclaims=exclaims,
            caps_words=n_caps if shouting_differs else 0,
        )


@lru_cache(maxsize=4096)
def _read_cached(analyser: RuleAnalyser, text: str) -> Reading:
    return analyser._read(text)
