"""Text folding for sort and search keys."""

import unicodedata


def fold(value: str) -> str:
    """Lower-case, accents removed, whitespace collapsed: 'Zoë  Ångström' → 'zoe angstrom'.

    Scripts without a Latin decomposition (Arabic, CJK…) are kept as they are, lower-cased."""
    if not value:
        return ""
    # Routing folds every incoming message: most are ASCII, which NFKD leaves as it is and
    # which has no combining marks (they all lie at U+0300 and above).
    if value.isascii():
        return " ".join(value.casefold().split())
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if ch < "\u0300" or not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for index range
    scans that work the same on SQLite and PostgreSQL with C-ordered comparisons)."""
    return prefix + "\U0010ffff"
