"""templatetags.inbox._short is default:"(no subject)"|truncatechars, also for text that
Unicode normalisation changes and for combining characters."""

import pytest
from django.template import engines

from rapport.conversations.templatetags.inbox import _short

_TEMPLATE = engines["django"].from_string(
    '{% autoescape off %}{{ t|default:"(no subject)"|truncatechars:n }}{% endautoescape %}'
)

TEXTS = [
    "", None, "Hi", "x" * 49, "x" * 50, "x" * 51, "x" * 60, "x" * 61, "y" * 200,
    "e\u0301" * 30,  # decomposed: NFC makes one character of each pair
    "e" + "\u0301" * 70,  # combining characters do not count
    "\u0958" * 55,  # NFC expands it to two code points, one of them combining
    "Ünïcode <b>&</b> refund " * 3,
]  # fmt: skip


@pytest.mark.parametrize("length", [50, 60])
@pytest.mark.parametrize("text", TEXTS)
def test_short_is_the_template_filters(text, length):
    assert _short(text, length) == _TEMPLATE.render({"t": text, "n": length})
