"""A record's timeline as the detail screens show it."""

from typing import Any, TypedDict, Unpack

from rapport.accounts.models import User
from rapport.activities.selectors import timeline_page
from rapport.core.access import can_see
from rapport.core.errors import ActionError
from rapport.core.pagination import Page


def mark_visible_links(user: User, activity: Any) -> None:
    """An activity shared with everyone can hang off a private deal or person: link only
    to what the user may see, so names of hidden records never show."""
    for name in ("person", "organisation", "deal"):
        target = getattr(activity, name)
        setattr(activity, f"{name}_visible", target is not None and can_see(user, target))


class TimelineTarget(TypedDict, total=False):
    person_id: int
    organisation_id: int
    deal_id: int


def timeline_for(user: User, cursor: str | None, **target: Unpack[TimelineTarget]) -> Page:
    """A page of a record's timeline; a stale or mangled cursor shows the newest page."""
    try:
        page = timeline_page(user=user, cursor=cursor or None, limit=20, **target)
    except ActionError:
        page = timeline_page(user=user, limit=20, **target)
    for activity in page.items:
        mark_visible_links(user, activity)
    return page
