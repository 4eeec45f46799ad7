"""Keywords and hashtags of a mention: the most frequent words minus stopwords, cheap enough
to run on every mention at ingest."""

import re
from collections import Counter

_URL = re.compile(r"https?://\S+|www\.\S+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w{2,60})")
_HANDLE = re.compile(r"(?<![\w@])@[\w.@-]+")
_WORD = re.compile(r"[^\W\d_][\w'’-]{2,39}")

STOPWORDS = frozenset(
    """
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each even ever every few for from further get gets getting got had hadn't has hasn't have haven't
having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm
i've if in into is isn't it it's its itself just let's like make me more most much must mustn't my
myself need new no nor not now of off on once one only or other ought our ours ourselves out over own
please really same say says see shan't she she'd she'll she's should shouldn't so some still such than
thank thanks that that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those through to too under until up us very via was wasn't we we'd we'll we're
we've were weren't what what's when when's where where's which while who who's whom why why's will with
won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves yes ok okay lol
amp today day time going know think want way back right good well great people thing things
le la les un une des du de et est en que qui pour pas sur avec dans ce cette mais ou par plus
der die das und ist nicht ein eine mit von zu den dem auf für sich auch es ich sie wir
el los las una unos del que por con para pero como más este esta
""".split()
)


def hashtags(text: str) -> list[str]:
    return list(dict.fromkeys(t.lower() for t in _HASHTAG.findall(text or "")))[:20]


def keywords(text: str, *, limit: int = 6, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The `limit` most frequent content words (ties in order of appearance)."""
    if not text:
        return []
    cleaned = _HANDLE.sub(" ", _HASHTAG.sub(" ", _URL.sub(" ", text.casefold())))
    counts: Counter[str] = Counter()
    for word in _WORD.findall(cleaned):
        word = word.strip("'’-").replace("’", "'")
        if len(word) < 3 or word in STOPWORDS or word in exclude:
            continue
        if word.endswith("'s"):
            word = word[:-2]
        counts[word] += 1
    return [w for w, _ in counts.most_common(limit)]
