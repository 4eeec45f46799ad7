from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from rapport.conversations.actions import MENTION_RE
from rapport.core import reads

register = template.Library()


@register.filter
def with_mentions(text: str) -> SafeString:
    """A note's plain text, escaped, with line breaks, and each @username of a colleague as
    a link to their conversations. Everything but the generated links is escaped text."""
    text = text or ""
    names = sorted({m.group(1).rstrip(".-+") for m in MENTION_RE.finditer(text)})
    # Plain SQL: a page of notes would compile one ORM query per note.
    users = (
        dict(
            reads.fetch(
                f"SELECT username, id FROM accounts_user WHERE username IN ({reads.marks(names)})", names
            )
        )  # noqa: S608
        if names
        else {}
    )
    out: list[str] = []
    pos = 0
    for m in MENTION_RE.finditer(text):
        name = m.group(1).rstrip(".-+")
        user_id = users.get(name)
        if user_id is None:
            continue
        end = m.start(1) + len(name)
        out.append(escape(text[pos : m.start()]))
        out.append(
            f'<a class="mention" href="/inbox/?view=all&amp;status=any&amp;assignee={user_id}">@{escape(name)}</a>'
        )
        pos = end
    out.append(escape(text[pos:]))
    return mark_safe("".join(out).replace("\r\n", "\n").replace("\n", "<br>"))  # noqa: S308 - escaped above
