"""Record-level access, decided in one place.

Every list, detail, search, export, count and API read starts from `visible(Model, user)`;
every write first loads the record through `editable(...)`. Anything a user may not see
behaves as if it did not exist (404), so probing ids reveals nothing.

Rules
- admin: sees and edits everything.
- everyone else sees a record when it is shared with everyone, when they own it, or when it
  is shared with a team they belong to; a manager also sees (and edits) every record of the
  teams they belong to, private ones included.
- writing needs a role other than read-only, and ownership, team membership or managing
  the record's team.
"""

from typing import Protocol, TypeVar, cast

from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404

from rapport.accounts.models import Role, User
from rapport.core.models import Visibility

M = TypeVar("M", bound=models.Model)


class AccessFields(Protocol):
    """What the checks read: a model instance, or a light row read in plain SQL (core.reads)."""

    @property
    def owner_id(self) -> int: ...
    @property
    def team_id(self) -> int | None: ...
    @property
    def visibility(self) -> str: ...


def visibility_q(user: User, prefix: str = "") -> Q:
    """The Q object that keeps only what `user` may see (prefix for related lookups)."""
    if user.is_admin:
        return Q()
    p = prefix
    teams = user.team_ids()
    q = Q(**{f"{p}visibility": Visibility.EVERYONE}) | Q(**{f"{p}owner_id": user.pk})
    if teams:
        if user.role == Role.MANAGER:
            q |= Q(**{f"{p}team_id__in": teams})
        else:
            q |= Q(**{f"{p}visibility": Visibility.TEAM, f"{p}team_id__in": teams})
    return q


def visible(model: type[M], user: User) -> QuerySet[M]:
    if not user.is_authenticated or not user.is_active:
        return model._default_manager.none()
    return model._default_manager.filter(visibility_q(user))


def can_see(user: User, record: "models.Model | AccessFields") -> bool:
    if user.is_admin:
        return True
    r = cast(AccessFields, record)  # every OwnedRecord has these fields
    if r.owner_id == user.pk or r.visibility == Visibility.EVERYONE:
        return True
    team_id = r.team_id
    if team_id is None or team_id not in user.team_ids():
        return False
    return r.visibility == Visibility.TEAM or user.role == Role.MANAGER


def can_edit(user: User, record: "models.Model | AccessFields") -> bool:
    if not user.can_write:
        return False
    if user.is_admin:
        return True
    r = cast(AccessFields, record)
    if r.owner_id == user.pk:
        return True
    team_id = r.team_id
    return team_id is not None and team_id in user.team_ids() and can_see(user, record)


def get_visible(model: type[M], user: User, pk: object, queryset: QuerySet[M] | None = None) -> M:
    qs = queryset if queryset is not None else visible(model, user)
    try:
        return qs.get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
        raise Http404("Not found")


def get_editable(model: type[M], user: User, pk: object, queryset: QuerySet[M] | None = None) -> M:
    """Load a record for writing; a record the user may see but not change is also a 404 for
    writes through the API, and a PermissionDenied in the UI is decided by the caller."""
    record = get_visible(model, user, pk, queryset)
    if not can_edit(user, record):
        raise Http404("Not found")
    return record
