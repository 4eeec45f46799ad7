from django import template
from django.utils.safestring import SafeString, mark_safe

from rapport.conversations.sanitise import clean_html

register = template.Library()


@register.filter
def sanitised(html: str) -> SafeString:
    """Stored HTML is clean already; cleaning again at render time (idempotent) means a row
    written by anything other than the pipeline still cannot inject markup."""
    return mark_safe(clean_html(html or ""))  # noqa: S308 - nh3 allow-list output
