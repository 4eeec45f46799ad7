"""Reads on channels and raw payloads: admins only (credentials and raw bodies are sensitive)."""

from django.db.models import QuerySet
from django.http import Http404

from rapport.accounts.models import User
from rapport.channels.models import Channel, PayloadStatus, RawPayload


def require_admin(user: User) -> None:
    if not (user.is_authenticated and user.is_active and user.is_admin):
        raise Http404("Not found")


def channels_for(user: User) -> QuerySet[Channel]:
    require_admin(user)
    return Channel.objects.select_related("team").order_by("name", "id")


def channel_get(user: User, channel_id: int | str) -> Channel:
    try:
        return channels_for(user).get(pk=channel_id)
    except (Channel.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")


def dead_letters(user: User) -> QuerySet[RawPayload]:
    require_admin(user)
    return RawPayload.objects.filter(status=PayloadStatus.DEAD).select_related("channel").defer("body")


def payload_get(user: User, payload_id: int | str) -> RawPayload:
    require_admin(user)
    try:
        return RawPayload.objects.select_related("channel").get(pk=payload_id)
    except (RawPayload.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")
