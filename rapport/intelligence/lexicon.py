"""Word lists for the offline analyser: VADER's lexicon plus our customer-service extensions.

The general lexicon is VADER's (Hutto & Gilbert 2014, MIT licence), read from the installed
`vaderSentiment` package so that none of it is copied here. Without that package a small
built-in list keeps the analyser working (less accurate, never broken). Our own tables below
cover what VADER was not built for: service complaints ("still waiting", "charged twice"),
churn ("cancel my subscription"), tweet idioms ("can't wait") and emoji.

Valences are on VADER's scale, -4 … +4.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

B_INCR = 0.293
B_DECR = -0.293

# Phrases are matched on lower-cased word tokens before single words; a phrase's valence
# replaces the valences of its words. `None` = a phrase that only carries an intent/urgency
# cue. Cues: intent (complaint, question, purchase_intent, churn_intent, praise) and urgency;
# "churn_weak" counts as churn only when the message is not positive ("switch to the annual plan").
# Each entry: phrase -> (valence or None, intent cue or "", urgent?)
PHRASES: dict[str, tuple[float | None, str, bool]] = {
    # complaints about service
    "still waiting": (-2.2, "complaint", False),
    "still not": (None, "complaint", False),
    "still no": (-1.8, "complaint", False),
    "still haven't": (-1.8, "complaint", False),
    "still hasn't": (-1.8, "complaint", False),
    "no response": (-2.2, "complaint", False),
    "no reply": (-2.0, "complaint", False),
    "no answer": (-1.8, "complaint", False),
    "no one": (-0.8, "", False),
    "nobody answers": (-2.0, "complaint", False),
    "never arrived": (-2.4, "complaint", False),
    "never received": (-2.4, "complaint", False),
    "never got": (-1.6, "complaint", False),
    "not received": (-2.0, "complaint", False),
    "hasn't arrived": (-2.0, "complaint", False),
    "haven't received": (-2.0, "complaint", False),
    "not working": (-2.2, "complaint", False),
    "doesn't work": (-2.2, "complaint", False),
    "does not work": (-2.2, "complaint", False),
    "don't work": (-2.0, "complaint", False),
    "didn't work": (-2.0, "complaint", False),
    "stopped working": (-2.4, "complaint", False),
    "won't work": (-2.0, "complaint", False),
    "keeps crashing": (-2.4, "complaint", False),
    "on hold": (-1.2, "complaint", False),
    "charged twice": (-2.6, "complaint", True),
    "double charged": (-2.6, "complaint", True),
    "overcharged": (-2.4, "complaint", False),
    "waste of money": (-2.8, "complaint", False),
    "waste of time": (-2.6, "complaint", False),
    "ripped off": (-2.8, "complaint", False),
    "rip off": (-2.6, "complaint", False),
    "let down": (-2.0, "complaint", False),
    "let me down": (-2.2, "complaint", False),
    "fell apart": (-2.2, "complaint", False),
    "customer service": (0.0, "", False),
    "customer support": (0.0, "", False),
    "not happy": (-2.0, "complaint", False),
    "not impressed": (-2.0, "complaint", False),
    "not acceptable": (-2.4, "complaint", False),
    "fed up": (-2.4, "complaint", False),
    "sick of": (-2.2, "complaint", False),
    "tired of": (-1.8, "complaint", False),
    "what a joke": (-2.2, "complaint", False),
    "wrong item": (-2.0, "complaint", False),
    "wrong order": (-2.0, "complaint", False),
    "out of stock": (-0.8, "", False),
    "yeah right": (-2.0, "", False),
    # churn
    "cancel my": (-1.8, "churn_intent", True),
    "cancelling my": (-1.8, "churn_intent", True),
    "canceling my": (-1.8, "churn_intent", True),
    "cancel our": (-1.8, "churn_intent", True),
    "cancel the subscription": (-1.8, "churn_intent", True),
    "close my account": (-1.6, "churn_intent", True),
    "delete my account": (-1.6, "churn_intent", True),
    "closing my account": (-1.6, "churn_intent", True),
    "switching to": (-0.8, "churn_weak", False),
    "switch to": (None, "churn_weak", False),
    "moving to": (None, "churn_weak", False),
    "done with you": (-2.2, "churn_intent", True),
    "done with": (-0.8, "churn_weak", False),
    "never again": (-2.2, "churn_intent", False),
    "never buying": (-2.2, "churn_intent", True),
    "never ordering": (-2.2, "churn_intent", True),
    "never using": (-2.2, "churn_intent", True),
    "never use": (-1.6, "churn_weak", False),
    "last time i": (-1.0, "churn_weak", False),
    "take my business": (-1.8, "churn_intent", True),
    "unsubscribe": (-0.6, "churn_weak", False),
    "want out": (-1.2, "churn_weak", False),
    "terminate my": (-1.6, "churn_intent", True),
    "leaving you": (-1.6, "churn_intent", True),
    # purchase intent
    "how much": (None, "purchase_intent", False),
    "want to buy": (0.6, "purchase_intent", False),
    "looking to buy": (0.6, "purchase_intent", False),
    "looking for a": (None, "purchase_intent", False),
    "where can i buy": (0.4, "purchase_intent", False),
    "where can i get": (0.4, "purchase_intent", False),
    "interested in": (0.8, "purchase_intent", False),
    "do you ship": (None, "purchase_intent", False),
    "do you deliver": (None, "purchase_intent", False),
    "in stock": (None, "purchase_intent", False),
    "free trial": (0.6, "purchase_intent", False),
    "sign up": (None, "purchase_intent", False),
    "place an order": (None, "purchase_intent", False),
    "get a quote": (None, "purchase_intent", False),
    "can i order": (None, "purchase_intent", False),
    "like to order": (0.4, "purchase_intent", False),
    "like to buy": (0.4, "purchase_intent", False),
    "i'd like to buy": (0.4, "purchase_intent", False),
    "i'll take": (None, "purchase_intent", False),
    "book a demo": (None, "purchase_intent", False),
    # praise and tweet idioms
    "thank you": (2.2, "praise", False),
    "thank u": (2.2, "praise", False),
    "thank you so much": (3.2, "praise", False),
    "thanks so much": (3.0, "praise", False),
    "works great": (2.8, "praise", False),
    "works perfectly": (3.0, "praise", False),
    "work great": (2.6, "praise", False),
    "well done": (2.6, "praise", False),
    "great job": (3.0, "praise", False),
    "good job": (2.6, "praise", False),
    "highly recommend": (3.0, "praise", False),
    "can't wait": (2.4, "", False),
    "cant wait": (2.4, "", False),
    "cannot wait": (2.4, "", False),
    "can not wait": (2.4, "", False),
    "no problem": (1.2, "", False),
    "no worries": (1.4, "", False),
    "not bad": (1.2, "", False),
    "no doubt": (0.8, "", False),
    "looking forward": (2.0, "", False),
    "look forward": (1.8, "", False),
    "the best": (3.2, "", False),
    "the shit": (3.0, "", False),
    "the bomb": (3.0, "", False),
    "bad ass": (1.5, "", False),
    "to die for": (3.0, "", False),
    "kiss of death": (-1.5, "", False),
    "under the weather": (-2.0, "", False),
    "break a leg": (2.0, "", False),
    # urgency
    "right now": (None, "", True),
    "as soon as possible": (None, "", True),
    "data breach": (-2.4, "complaint", True),
    "been hacked": (-2.4, "complaint", True),
    "got hacked": (-2.4, "complaint", True),
    "is down": (-1.2, "complaint", True),
    "are down": (-1.0, "complaint", True),
    "can't log": (-1.8, "complaint", True),
    "cannot log": (-1.8, "complaint", True),
    "can't login": (-1.8, "complaint", True),
    "locked out": (-2.0, "complaint", True),
}

# Single words that carry a cue (checked for every word token, also for lexicon words).
WORD_CUES: dict[str, tuple[str, bool]] = {
    "refund": ("complaint", False),
    "refunds": ("complaint", False),
    "refunded": ("complaint", False),
    "broken": ("complaint", False),
    "broke": ("complaint", False),
    "damaged": ("complaint", False),
    "defective": ("complaint", False),
    "faulty": ("complaint", False),
    "missing": ("complaint", False),
    "late": ("complaint", False),
    "delayed": ("complaint", False),
    "worst": ("complaint", False),
    "terrible": ("complaint", False),
    "awful": ("complaint", False),
    "horrible": ("complaint", False),
    "useless": ("complaint", False),
    "unacceptable": ("complaint", False),
    "disappointed": ("complaint", False),
    "disappointing": ("complaint", False),
    "complaint": ("complaint", False),
    "complain": ("complaint", False),
    "scam": ("complaint", True),
    "fraud": ("complaint", True),
    "rude": ("complaint", False),
    "crashes": ("complaint", False),
    "crashing": ("complaint", False),
    "error": ("complaint", False),
    "bug": ("complaint", False),
    "outage": ("complaint", True),
    "hacked": ("complaint", True),
    "unsubscribe": ("churn_weak", False),
    "cancel": ("churn_weak", False),
    "cancelled": ("churn_weak", False),
    "canceled": ("churn_weak", False),
    "cancellation": ("churn_weak", False),
    "competitor": ("churn_weak", False),
    "price": ("purchase_intent", False),
    "prices": ("purchase_intent", False),
    "pricing": ("purchase_intent", False),
    "quote": ("purchase_intent", False),
    "cost": ("purchase_intent", False),
    "buy": ("purchase_intent", False),
    "purchase": ("purchase_intent", False),
    "discount": ("purchase_intent", False),
    "demo": ("purchase_intent", False),
    "trial": ("purchase_intent", False),
    "upgrade": ("purchase_intent", False),
    "subscribe": ("purchase_intent", False),
    "thanks": ("praise", False),
    "thank": ("praise", False),
    "thx": ("praise", False),
    "love": ("praise", False),
    "amazing": ("praise", False),
    "awesome": ("praise", False),
    "excellent": ("praise", False),
    "fantastic": ("praise", False),
    "brilliant": ("praise", False),
    "great": ("praise", False),
    "perfect": ("praise", False),
    "recommend": ("praise", False),
    "helpful": ("praise", False),
    "kudos": ("praise", False),
    "urgent": ("", True),
    "urgently": ("", True),
    "asap": ("", True),
    "immediately": ("", True),
    "emergency": ("", True),
    "lawyer": ("", True),
    "lawyers": ("", True),
    "legal": ("", True),
    "sue": ("", True),
    "lawsuit": ("", True),
    "chargeback": ("", True),
}

# Words the general lexicon lacks or scores for another register than service messages and tweets.
WORD_OVERRIDES: dict[str, float] = {
    "refund": -1.2,
    "refunds": -1.0,
    "broken": -2.4,
    "worst": -3.2,
    "useless": -2.4,
    "unacceptable": -2.6,
    "ridiculous": -2.0,
    "disgusting": -3.0,
    "disappointing": -2.4,
    "disappointed": -2.4,
    "delayed": -1.4,
    "late": -0.6,
    "overcharged": -2.4,
    "crashes": -1.8,
    "crashing": -1.8,
    "crashed": -1.8,
    "rude": -2.2,
    "scam": -2.8,
    "scammed": -3.0,
    "sucks": -2.0,
    "fml": -2.2,
    "smh": -1.4,
    "wtf": -2.0,
    "ugh": -1.8,
    "meh": -0.8,
    "sad": -2.1,
    "unfortunately": -1.6,
    "sadly": -1.6,
    "rip": -1.0,
    "thx": 1.8,
    "ty": 1.4,
    "tysm": 3.0,
    "congrats": 2.8,
    "congratulations": 2.9,
    "bday": 1.6,
    "birthday": 1.4,
    "yay": 2.4,
    "woohoo": 2.4,
    "excited": 2.4,
    "exciting": 2.4,
    "fav": 2.0,
    "fave": 2.0,
    "favorite": 2.0,
    "favourite": 2.0,
    "enjoy": 2.2,
    "enjoyed": 2.2,
    "awesome": 3.1,
    "amazing": 3.0,
    "perfect": 2.8,
    "helpful": 2.0,
    "recommend": 1.6,
    "kudos": 2.4,
    "lovely": 2.8,
    "beautiful": 2.9,
    "legend": 2.0,
    "goat": 1.0,
    "hopefully": 1.4,
    # register fixes: frequent in neutral tweets and service messages, rarely sentiment there
    "like": 0.5,
    "lol": 1.0,
    "lmao": 1.2,
    "lmfao": 1.2,
    "haha": 1.4,
    "please": 0.4,
    "pls": 0.2,
    "plz": 0.2,
    "want": 0.0,
    "play": 0.4,
    "care": 1.0,
    "kind": 0.8,
    "well": 0.4,
    "pretty": 1.0,
    "ok": 0.6,
    "okay": 0.6,
    "yes": 1.0,
    "no": -0.6,
    "free": 1.2,
    "party": 1.0,
    "cancel": -1.0,
    "cancelled": -1.2,
    "canceled": -1.2,
    "war": -1.6,
    "killed": -2.6,
    "attack": -2.0,
    "attacks": -2.0,
    "dead": -2.6,
    "died": -2.6,
    "death": -2.9,
    "shooting": -2.0,
    "terrorist": -3.0,
    "terrorists": -3.0,
}


def _words(spaced: str) -> list[str]:
    return spaced.split()


NEGATIONS = frozenset(
    _words(
        "aint arent cannot cant couldnt darent didnt doesnt ain't aren't can't couldn't daren't didn't "
        "doesn't dont hadnt hasnt havent isnt mightnt mustnt neither don't hadn't hasn't haven't isn't "
        "mightn't mustn't neednt needn't never none nope nor not nothing nowhere oughtnt shant shouldnt "
        "uhuh wasnt werent oughtn't shan't shouldn't uh-uh wasn't weren't without wont wouldnt won't "
        "wouldn't rarely seldom despite no"
    )
)

BOOSTERS: dict[str, float] = {
    w: B_INCR
    for w in _words(
        "absolutely amazingly awfully completely considerable considerably decidedly deeply effing "
        "enormous enormously entirely especially exceptional exceptionally extreme extremely "
        "fabulously flipping flippin frackin fracking fricking frickin frigging friggin fully fuckin "
        "fucking fuggin fugging greatly hella highly hugely incredible incredibly intensely major "
        "majorly more most particularly purely quite really remarkably so substantially thoroughly "
        "total totally tremendous tremendously uber unbelievably unusually utter utterly very super "
        "soo sooo sooooo realy rly srsly seriously"
    )
} | {
    w: B_DECR
    for w in _words(
        "almost barely hardly kinda kindof less little marginal marginally occasional occasionally "
        "partly scarce scarcely slight slightly somewhat sorta sortof"
    )
}

# Clause contrast: what follows weighs more than what precedes.
CONTRASTS = frozenset(("but", "however", "although", "though", "yet", "nevertheless"))

EMOTICONS: dict[str, float] = {
    ":)": 2.0, ":-)": 2.0, ":]": 2.0, "=)": 2.0, ":d": 2.6, ":-d": 2.6, "xd": 2.2, ";)": 1.6,
    ";-)": 1.6, ":p": 1.4, ":-p": 1.4, ";p": 1.4, "<3": 2.8, "<33": 3.0, "<333": 3.0, ":*": 2.2,
    "^_^": 2.2, "^^": 1.8, "(:": 2.0, ":')": 1.6, "8)": 1.6, ":o)": 1.8,
    ":(": -2.2, ":-(": -2.2, ":[": -2.0, "=(": -2.0, ":'(": -2.4, ":/": -1.2, ":-/": -1.2,
    ":\\": -1.2, ":|": -0.8, ":-|": -0.8, ">:(": -2.8, "</3": -2.6, "d:": -2.0, "-_-": -1.4,
    ":@": -2.4, ":s": -1.0, "):": -2.2,
}  # fmt: skip

# Hand-set for the emoji that service messages and tweets use most, where the names in the
# emoji table mislead (😂 "tears of joy" is laughter; 😭 is mostly "so cute/funny" on social).
EMOJI_OVERRIDES: dict[str, float] = {
    "😂": 1.6, "🤣": 1.8, "😭": -0.6, "🙏": 1.6, "👍": 2.0, "👎": -2.2, "👏": 2.0, "🎉": 2.6,
    "🔥": 1.8, "💯": 1.8, "✨": 1.4, "❤": 2.8, "♥": 2.6, "💕": 2.8, "💖": 2.8, "💙": 2.6,
    "💜": 2.6, "💚": 2.6, "💛": 2.6, "🖤": 1.6, "😍": 3.0, "🥰": 3.0, "😘": 2.6, "😊": 2.4,
    "☺": 2.2, "🙂": 1.6, "😁": 2.4, "😀": 2.2, "😃": 2.2, "😄": 2.4, "😎": 2.0, "🤗": 2.4,
    "🙌": 2.4, "💪": 1.8, "🥳": 2.8, "😉": 1.6, "😅": 0.6, "🙃": -0.4, "😐": -0.6, "😑": -1.0,
    "🙄": -1.8, "😒": -1.8, "😕": -1.4, "😞": -2.2, "😔": -2.0, "😟": -2.0, "😢": -2.2, "😥": -1.8,
    "😩": -2.0, "😫": -2.2, "😤": -2.2, "😠": -2.6, "😡": -2.8, "🤬": -3.0, "💔": -2.6, "😱": -1.6,
    "🤮": -2.8, "🤢": -2.4, "💩": -2.2, "😴": -0.6, "🤔": -0.2, "😬": -1.0, "😳": -0.6, "❌": -1.4,
    "✅": 1.4, "⭐": 1.8, "🌟": 2.0, "🤦": -1.8, "😓": -1.6, "😰": -1.8, "😨": -1.8, "😖": -2.0,
}  # fmt: skip

_FALLBACK_LEXICON: dict[str, float] = {
    "good": 1.9, "great": 3.1, "love": 3.2, "happy": 2.7, "nice": 1.8, "best": 3.2, "thanks": 1.9,
    "thank": 1.5, "excellent": 2.7, "fun": 2.3, "glad": 2.0, "win": 2.8, "lol": 1.8, "haha": 2.0,
    "bad": -2.5, "hate": -2.7, "sad": -2.1, "angry": -2.3, "terrible": -2.1, "awful": -2.0,
    "horrible": -2.5, "poor": -2.1, "problem": -1.7, "fail": -2.5, "wrong": -2.1, "sorry": -0.3,
    "stupid": -2.4, "annoying": -1.7, "upset": -1.6, "waiting": -0.3, "lost": -1.3, "shit": -2.6,
}  # fmt: skip


def _vader_files() -> tuple[str, str] | None:
    try:
        pkg = resources.files("vaderSentiment")
        return (
            pkg.joinpath("vader_lexicon.txt").read_text(encoding="utf-8"),
            pkg.joinpath("emoji_utf8_lexicon.txt").read_text(encoding="utf-8"),
        )
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


@cache
def lexicon_source() -> str:
    return "vader" if _vader_files() is not None else "builtin"


@cache
def word_lexicon() -> dict[str, float]:
    """lower-cased word (or emoticon) -> valence."""
    lex: dict[str, float] = dict(_FALLBACK_LEXICON)
    files = _vader_files()
    if files is not None:
        for line in files[0].splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                if len(parts[0]) == 1 and parts[0].isalpha():
                    continue  # single letters are initials and typos far more often than moods
                try:
                    lex[parts[0]] = float(parts[1])
                except ValueError:
                    continue
    lex.update(WORD_OVERRIDES)
    lex.update(EMOTICONS)
    return lex


@cache
def emoji_lexicon() -> dict[str, float]:
    """Single emoji character -> valence, precomputed once from the emoji names."""
    lex = word_lexicon()
    out: dict[str, float] = {}
    files = _vader_files()
    if files is not None:
        for line in files[1].splitlines():
            parts = line.split("\t")
            if len(parts) != 2 or len(parts[0]) != 1:
                continue
            words = parts[1].lower().replace("-", " ").split()
            total = sum(lex.get(w, 0.0) for w in words)
            if total:
                out[parts[0]] = max(-3.0, min(3.0, total))
    out.update(EMOJI_OVERRIDES)
    return out


def is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So"
