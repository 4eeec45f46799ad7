"""HTML from customers is hostile. It is cleaned once on the way in with nh3 (an allow-list
sanitiser) and only the cleaned form is stored and shown.

The allow-list has no script, style, base, form, iframe, object or SVG, no `on*` or `style`
attributes, and links may only be http(s)/mailto/tel: `javascript:` and `data:` never
survive. Images are dropped too: a remote image in an email is a read receipt for the
sender, and CSP would block it anyway. Cleaning is idempotent: clean(clean(x)) == clean(x)."""

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"dir"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
MAX_HTML = 1_000_000


def clean_html(html: str) -> str:
    if not html:
        return ""
    html = html[:MAX_HTML]
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(html: str) -> str:
    """A plain-text fallback when a platform sends HTML only (for search and scoring)."""
    text = nh3.clean(html or "", tags=set(), clean_content_tags={"script", "style"})
    import html as html_lib

    return " ".join(html_lib.unescape(text).split())
