from typing import Any

from django import template

from rapport.channels.media import media_of

register = template.Library()


@register.simple_tag
def attachments_of(message: Any) -> list[tuple[dict[str, Any], Any]]:
    """(announced metadata, StoredMedia or None) per attachment; one query, and none for a
    message without attachments."""
    return media_of(message)
