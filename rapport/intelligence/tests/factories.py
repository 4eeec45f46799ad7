"""Made-up labelled examples (never taken from any real data set)."""

import random

# Invented words: the offline lexicon knows none of them, so the rules call them all neutral.
NEG_WORDS = ["zorp", "grelk", "vashtu"]
POS_WORDS = ["blick", "quomba", "frell"]
NEU_WORDS = ["tarn", "pellow", "diska"]
FILLER = ["mibo", "ruxa", "tolen", "sarp", "wenik", "obru", "fesh", "kalu", "dorrin", "yemp"]


def separable(n_per_class: int = 40, seed: int = 7) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n_per_class):
        for label, words in (("negative", NEG_WORDS), ("positive", POS_WORDS), ("neutral", NEU_WORDS)):
            text = " ".join(rnd.sample(FILLER, 4) + [rnd.choice(words)] + [str(i)])
            rows.append((text, label))
    return rows


def lexicon_obvious(n_per_class: int = 20, seed: int = 3) -> list[tuple[str, str]]:
    """Texts the rules already get right: a learned model cannot beat them by a margin."""
    rnd = random.Random(seed)
    pos = ["great", "wonderful", "excellent", "lovely", "fantastic"]
    neg = ["terrible", "awful", "horrible", "disgusting", "dreadful"]
    nouns = ["table", "invoice", "parcel", "form", "meeting", "ticket"]
    rows = []
    for _ in range(n_per_class):
        noun = rnd.choice(nouns)
        rows.append((f"what a {rnd.choice(pos)} {noun}, {rnd.choice(pos)} indeed", "positive"))
        rows.append((f"what a {rnd.choice(neg)} {noun}, {rnd.choice(neg)} indeed", "negative"))
        rows.append((f"the {noun} is on the {rnd.choice(nouns)} number {rnd.randint(1, 99)}", "neutral"))
    return rows


def write_tsv(path, rows) -> str:
    path.write_text("".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8")
    return str(path)
