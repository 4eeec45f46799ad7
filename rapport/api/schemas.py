"""Schemas shared by the API modules.

Input schemas list exactly the fields a client may set and forbid anything else (so a body
carrying `id`, `version`, `created_at` or a misspelt field is a 422, never silently
ignored). String limits mirror the model columns, so oversized input is refused before it
reaches a database that would truncate it or fail with a 500."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from rapport.core.errors import ActionError

MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text columns; refuse it here with a field message instead.
    if "\x00" in value:
        raise ValueError("Must not contain a NUL character.")
    return value


@dataclass(frozen=True, slots=True)
class Chars(GroupedMetadata):
    """`Annotated[str, Chars(100)]`: at most 100 characters and no NUL. A metadata object
    rather than a function returning a type, so type checkers still see a plain `str`."""

    max_length: int

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(max_length=self.max_length)
        yield AfterValidator(_no_nul)


def Text(max_length: int) -> Any:  # noqa: N802 - reads like a type in signatures
    """The older spelling, `field: Text(100)`; kept because modules still use it. Type
    checkers reject a call in an annotation, so new code writes `Annotated[str, Chars(100)]`."""
    return Annotated[str, Chars(max_length)]


def _sane_datetime(value: dt.datetime) -> dt.datetime:
    if not 1900 <= value.year <= 2200:
        raise ValueError("Year must be between 1900 and 2200.")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _sane_date(value: dt.date) -> dt.date:
    if not 1900 <= value.year <= 2200:
        raise ValueError("Year must be between 1900 and 2200.")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
DateTime = Annotated[dt.datetime, AfterValidator(_sane_datetime)]
Date = Annotated[dt.date, AfterValidator(_sane_date)]
Amount = Annotated[Decimal, Field(ge=0, lt=Decimal("1e12"), allow_inf_nan=False)]
Visibility = Annotated[str, StringConstraints(max_length=10)]
TagName = Annotated[str, Chars(60)]

CustomValue = (
    Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)]
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)


def _custom_limits(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 100:
        raise ValueError("At most 100 custom fields.")
    for key in value:
        if not key or len(key) > 100 or "\x00" in key:
            raise ValueError("Custom field names are 1 to 100 characters.")
    return value


Custom = Annotated[dict[str, CustomValue], AfterValidator(_custom_limits)]


class InputSchema(Schema):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- shared output pieces


class UserRef(Schema):
    id: int
    username: str
    name: str


class TeamRef(Schema):
    id: int
    name: str


class Ref(Schema):
    """A link to another record; null when the caller may not see that record."""

    id: int
    name: str


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] = {}


class ConflictOut(ErrorOut):
    current_version: int | None = None


def user_ref(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "name": str(user)}


def team_ref(team: Any) -> dict[str, Any] | None:
    return None if team is None else {"id": team.pk, "name": team.name}


class AccessOut(Schema):
    owner: UserRef
    team: TeamRef | None
    visibility: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


def access_out(record: Any) -> dict[str, Any]:
    return {
        "owner": user_ref(record.owner),
        "team": team_ref(record.team),
        "visibility": record.visibility,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
    }


class AccessIn(InputSchema):
    """Who owns and sees a record. Checked by `resolve_access_fields`: only managers and
    admins may give a record to someone else, and teams are only the caller's own."""

    owner: Id | None = None
    team: Id | None = None
    visibility: Visibility | None = None


# ---------------------------------------------------------------- people


class IdentityIn(InputSchema):
    kind: Annotated[str, Chars(12)]
    value: Annotated[str, Chars(400)]
    label: Annotated[str, Chars(30)] = ""


class IdentityOut(Schema):
    id: int
    kind: str
    value: str
    label: str
    is_primary: bool
    verified: bool


class PersonCreate(AccessIn):
    first_name: Annotated[str, Chars(100)] = ""
    last_name: Annotated[str, Chars(100)] = ""
    title: Annotated[str, Chars(150)] = ""
    organisation: Id | None = None
    bio: Annotated[str, Chars(20000)] = ""
    language: Annotated[str, Chars(10)] = ""
    is_vip: bool = False
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    tags: list[TagName] = Field(default_factory=list, max_length=50)
    custom: Custom = Field(default_factory=dict)


class PersonPatch(AccessIn):
    first_name: Annotated[str, Chars(100)] | None = None
    last_name: Annotated[str, Chars(100)] | None = None
    title: Annotated[str, Chars(150)] | None = None
    organisation: Id | None = None
    bio: Annotated[str, Chars(20000)] | None = None
    language: Annotated[str, Chars(10)] | None = None
    is_vip: bool | None = None
    tags: list[TagName] | None = Field(None, max_length=50)
    custom: Custom | None = None


class PersonOut(AccessOut):
    id: int
    first_name: str
    last_name: str
    full_name: str
    title: str
    organisation: Ref | None
    bio: str
    language: str
    is_vip: bool
    needs_review: bool
    source: str
    primary_email: str
    primary_phone: str
    identities: list[IdentityOut]
    tags: list[str]
    custom: dict[str, Any]
    last_activity_at: dt.datetime | None


class RelationshipIn(InputSchema):
    to_person: Id
    kind: Annotated[str, Chars(20)]
    strength: int = Field(50, ge=0, le=100)


class RelationshipOut(Schema):
    id: int
    direction: str  # "out": this person → other; "in": other → this person
    kind: str
    strength: int
    other: Ref
    source: str
    created_at: dt.datetime


class EmploymentIn(InputSchema):
    organisation: Id
    title: Annotated[str, Chars(150)] = ""
    started_on: Date | None = None
    ended_on: Date | None = Field(None, description="Empty: works there now.")


class EmploymentEnd(InputSchema):
    ended_on: Date | None = Field(None, description="Empty: today.")


class EmploymentOut(Schema):
    id: int
    organisation: Ref
    title: str
    started_on: dt.date | None
    ended_on: dt.date | None
    is_current: bool


class AddressIn(InputSchema):
    label: Annotated[str, Chars(30)] = "work"
    street: Annotated[str, Chars(200)] = ""
    city: Annotated[str, Chars(100)] = ""
    region: Annotated[str, Chars(100)] = ""
    postcode: Annotated[str, Chars(20)] = ""
    country: Annotated[str, Chars(60)] = ""


class AddressPatch(InputSchema):
    label: Annotated[str, Chars(30)] | None = None
    street: Annotated[str, Chars(200)] | None = None
    city: Annotated[str, Chars(100)] | None = None
    region: Annotated[str, Chars(100)] | None = None
    postcode: Annotated[str, Chars(20)] | None = None
    country: Annotated[str, Chars(60)] | None = None


class AddressOut(Schema):
    id: int
    label: str
    street: str
    city: str
    region: str
    postcode: str
    country: str


# ---------------------------------------------------------------- organisations


class OrganisationCreate(AccessIn):
    name: Annotated[str, Chars(200)]
    domains: list[Annotated[str, Chars(253)]] = Field(default_factory=list, max_length=20)
    industry: Annotated[str, Chars(100)] = ""
    employees: int | None = Field(None, ge=0, le=2**31 - 1)
    website: Annotated[str, Chars(300)] = ""
    phone: Annotated[str, Chars(40)] = ""
    description: Annotated[str, Chars(20000)] = ""
    parent: Id | None = None
    tags: list[TagName] = Field(default_factory=list, max_length=50)
    custom: Custom = Field(default_factory=dict)


class OrganisationPatch(AccessIn):
    name: Annotated[str, Chars(200)] | None = None
    domains: list[Annotated[str, Chars(253)]] | None = Field(None, max_length=20)
    industry: Annotated[str, Chars(100)] | None = None
    employees: int | None = Field(None, ge=0, le=2**31 - 1)
    website: Annotated[str, Chars(300)] | None = None
    phone: Annotated[str, Chars(40)] | None = None
    description: Annotated[str, Chars(20000)] | None = None
    parent: Id | None = None
    tags: list[TagName] | None = Field(None, max_length=50)
    custom: Custom | None = None


class OrganisationOut(AccessOut):
    id: int
    name: str
    industry: str
    employees: int | None
    website: str
    phone: str
    description: str
    parent: Ref | None
    domains: list[str]
    tags: list[str]
    custom: dict[str, Any]
    source: str


# ---------------------------------------------------------------- sales


class StageIn(InputSchema):
    name: Annotated[str, Chars(100)]
    probability: int = Field(10, ge=0, le=100)
    is_won: bool = False
    is_lost: bool = False


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: int
    is_won: bool
    is_lost: bool


class PipelineIn(InputSchema):
    name: Annotated[str, Chars(100)]
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=1, max_length=30)


class PipelineOut(Schema):
    id: int
    name: str
    is_default: bool
    position: int
    stages: list[StageOut]


class ParticipantIn(InputSchema):
    person: Id
    role: Annotated[str, Chars(60)] = ""


class ParticipantOut(Schema):
    person: Ref
    role: str


class DealCreate(AccessIn):
    name: Annotated[str, Chars(200)]
    pipeline: Id | None = None
    stage: Id | None = None
    amount: Amount = Decimal("0")
    currency: Annotated[str, Chars(3)] = "EUR"
    expected_close: Date | None = None
    organisation: Id | None = None
    description: Annotated[str, Chars(20000)] = ""
    participants: list[ParticipantIn] = Field(default_factory=list, max_length=50)


class DealPatch(AccessIn):
    name: Annotated[str, Chars(200)] | None = None
    pipeline: Id | None = None
    stage: Id | None = None
    amount: Amount | None = None
    currency: Annotated[str, Chars(3)] | None = None
    expected_close: Date | None = None
    organisation: Id | None = None
    description: Annotated[str, Chars(20000)] | None = None
    lost_reason: Annotated[str, Chars(200)] | None = None


class DealMove(InputSchema):
    stage: Id
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="Version the client last saw.")


class StageRef(Schema):
    id: int
    name: str
    probability: int
    is_won: bool
    is_lost: bool


class DealOut(AccessOut):
    id: int
    name: str
    pipeline: Ref
    stage: StageRef
    status: str
    amount: Decimal
    weighted_amount: Decimal
    currency: str
    expected_close: dt.date | None
    closed_at: dt.datetime | None
    stage_changed_at: dt.datetime
    organisation: Ref | None
    description: str
    lost_reason: str
    participants: list[ParticipantOut]


class ProductIn(InputSchema):
    name: Annotated[str, Chars(200)]
    sku: Annotated[str, Chars(60)]
    price: Amount = Decimal("0")
    currency: Annotated[str, Chars(3)] = "EUR"
    is_subscription: bool = False


class ProductPatch(InputSchema):
    name: Annotated[str, Chars(200)] | None = None
    price: Amount | None = None
    currency: Annotated[str, Chars(3)] | None = None
    is_subscription: bool | None = None
    active: bool | None = None


class ProductOut(Schema):
    id: int
    name: str
    sku: str
    price: Decimal
    currency: str
    is_subscription: bool
    active: bool


class OrderIn(InputSchema):
    product: Id
    quantity: int = Field(1, ge=1, le=1_000_000)
    amount: Amount | None = None
    started_on: Date | None = None
    ends_on: Date | None = None
    deal: Id | None = None


class OrderOut(Schema):
    id: int
    organisation: int
    product: Ref
    deal: Ref | None
    quantity: int
    amount: Decimal
    currency: str
    started_on: dt.date
    ends_on: dt.date | None
    status: str


# ---------------------------------------------------------------- activities


class ActivityCreate(InputSchema):
    kind: Annotated[str, Chars(10)]
    subject: Annotated[str, Chars(300)] = ""
    body: Annotated[str, Chars(100000)] = ""
    person: Id | None = None
    organisation: Id | None = None
    deal: Id | None = None
    occurred_at: DateTime | None = None
    call_direction: Annotated[str, Chars(10)] = ""
    call_duration_s: int | None = Field(None, ge=0, le=86400)
    call_outcome: Annotated[str, Chars(15)] = ""
    phone_number: Annotated[str, Chars(40)] = ""
    ends_at: DateTime | None = None
    location: Annotated[str, Chars(200)] = ""
    due_at: DateTime | None = None
    assignee: Id | None = None
    email_from: Annotated[str, Chars(320)] = ""
    email_to: Annotated[str, Chars(2000)] = ""
    visibility: Visibility = "everyone"


class ActivityPatch(InputSchema):
    subject: Annotated[str, Chars(300)] | None = None
    body: Annotated[str, Chars(100000)] | None = None
    occurred_at: DateTime | None = None
    call_direction: Annotated[str, Chars(10)] | None = None
    call_duration_s: int | None = Field(None, ge=0, le=86400)
    call_outcome: Annotated[str, Chars(15)] | None = None
    ends_at: DateTime | None = None
    location: Annotated[str, Chars(200)] | None = None
    due_at: DateTime | None = None
    assignee: Id | None = None
    visibility: Visibility | None = None


class TaskComplete(InputSchema):
    done: bool = True


class ActivityOut(AccessOut):
    id: int
    kind: str
    subject: str
    body: str
    occurred_at: dt.datetime
    person: Ref | None
    organisation: Ref | None
    deal: Ref | None
    call_direction: str
    call_duration_s: int | None
    call_outcome: str
    phone_number: str
    ends_at: dt.datetime | None
    location: str
    due_at: dt.datetime | None
    assignee: UserRef | None
    done_at: dt.datetime | None
    email_from: str
    email_to: str


# ---------------------------------------------------------------- me and search


class MeOut(Schema):
    user: UserRef
    email: str
    role: str
    is_admin: bool
    can_write: bool
    teams: list[TeamRef]


class SearchResult(Schema):
    title: str
    url: str
    subtitle: str


class SearchGroup(Schema):
    key: str
    label: str
    results: list[SearchResult]


class SearchOut(Schema):
    q: str
    groups: list[SearchGroup]


# ---------------------------------------------------------------- turning input into records
# Shared by the endpoint modules: every id a client sends is resolved through what the caller
# may see, so naming someone else's private record behaves exactly like naming no record.


def require_writer(request: Any) -> Any:
    from ninja.errors import HttpError

    user = request.auth
    if not user.can_write:
        raise HttpError(403, "Your role is read-only.")
    return user


def lookup(queryset: Any, pk: int | None, field: str, label: str) -> Any:
    if pk is None:
        return None
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise ActionError(f"No such {label}.", {field: [f"No such {label}."]})
    return obj


def access_kwargs(payload: AccessIn) -> dict[str, Any]:
    """owner/team ids → records; whether the caller may set them is the action's decision."""
    from rapport.accounts.models import Team, User

    values: dict[str, Any] = {}
    if payload.owner is not None:
        values["owner"] = lookup(User.objects.filter(is_active=True), payload.owner, "owner", "user")
    if payload.team is not None:
        values["team"] = lookup(Team.objects.all(), payload.team, "team", "team")
    if payload.visibility is not None:
        values["visibility"] = payload.visibility
    return values


def visible_ids(user: Any, model: Any, ids: Any) -> set[int]:
    """Which of `ids` the user may see: one query for a whole page of references."""
    from rapport.core.access import visible

    wanted = {i for i in ids if i is not None}
    if not wanted:
        return set()
    return set(visible(model, user).filter(pk__in=wanted).values_list("pk", flat=True))


def ref(obj: Any, seen: set[int], label: str = "name") -> dict[str, Any] | None:
    if obj is None or obj.pk not in seen:
        return None
    return {"id": obj.pk, "name": str(getattr(obj, label))}


def expected_version(request: Any, version: int | None) -> int | None:
    """`?version=N` or an `If-Match: "N"` header: the version the client last saw."""
    if version is not None:
        return version
    header = request.headers.get("If-Match", "").strip().removeprefix("W/").strip('"')
    if not header:
        return None
    if not header.isdigit() or len(header) > 10:
        raise ActionError("If-Match must be a record version number.", {"version": ["Not a version."]})
    return int(header)
