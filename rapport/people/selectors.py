"""Reads on people and organisations, always scoped by what the user may see."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from rapport.accounts.models import User
from rapport.core import pagination, reads
from rapport.core.access import can_see, get_visible, visible
from rapport.core.errors import ActionError
from rapport.core.pagination import Page, keyset_page
from rapport.core.search import prefix_q, prefix_sql
from rapport.people.identities import IdentityError, normalise_phone
from rapport.people.models import Identity, Organisation, Person, Relationship, Tag

PERSON_SORTS = {
    "name": ["sort_key", "id"],
    "-name": ["-sort_key", "-id"],
    "created": ["created_at", "id"],
    "-created": ["-created_at", "-id"],
}
ORG_SORTS = {
    "name": ["name_key", "id"],
    "-name": ["-name_key", "-id"],
    "created": ["created_at", "id"],
    "-created": ["-created_at", "-id"],
}


@dataclass
class PersonFilters:
    q: str = ""
    organisation: int | None = None
    tag: str = ""
    owner: int | None = None
    vip: bool | None = None
    needs_review: bool | None = None
    sort: str = "name"


def people_visible(user: User) -> QuerySet[Person]:
    return visible(Person, user).filter(merged_into__isnull=True)


def visible_person_ids(user: User, person_ids: Collection[int]) -> set[int]:
    """Of these people, those `user` may see: people_visible in plain SQL, for lists that name
    the people their rows point to (the inbox, the conversations API). Compiling the ORM's
    IN list cost more than the read."""
    if not person_ids:
        return set()
    vis, params = reads.visibility_sql(user, "p")
    ids = list(person_ids)
    # A prepared statement on PostgreSQL (planning it cost more than running it); the id list
    # is padded to a multiple of ten (repeating an id changes nothing) so that a few
    # statements serve every page.
    ids += ids[-1:] * (-len(ids) % 10)
    rows = reads.fetch_prepared(
        f"SELECT p.id FROM people_person p WHERE p.id IN ({reads.marks(ids)}) "  # noqa: S608
        f"AND p.merged_into_id IS NULL AND {vis}",
        [*ids, *params],
    )
    return {pk for (pk,) in rows}


def _tagged(model: type[Person] | type[Organisation], tag: str) -> Exists:
    """EXISTS rather than a join: the list keeps walking its sort index and checks each row,
    instead of collecting and sorting every tagged record (300 ms → 5 ms at 1M people)."""
    through = model.tags.through
    column = "person_id" if model is Person else "organisation_id"
    return Exists(through.objects.filter(**{column: OuterRef("pk")}, tag__name=tag))


def person_list(
    *,
    user: User,
    filters: PersonFilters,
    cursor: str | None = None,
    limit: int = 50,
    with_total: bool = True,
) -> Page[Person]:
    """One page of people as model instances (the API, exports). The screens read the same
    page as PersonRow through person_rows."""
    if filters.sort not in PERSON_SORTS:
        raise ActionError("Unknown sort order.", {"sort": [f"Choose one of {', '.join(PERSON_SORTS)}."]})
    qs = people_visible(user)
    saturated = False
    if filters.q:
        # Candidates bound the matches a text filter can page through (up to 400 for a list
        # page: type more letters to narrow down), fewer for the search box's handful. With
        # 500 per key, carrying 1,000 ids through the count and the page cost 10 ms a request.
        ids, saturated = _text_candidates(user, filters.q, min(200, limit * 4))
        qs = qs.filter(pk__in=ids)
    if filters.organisation:
        qs = qs.filter(organisation_id=filters.organisation)
    if filters.owner:
        qs = qs.filter(owner_id=filters.owner)
    if filters.vip is not None:
        qs = qs.filter(is_vip=filters.vip)
    if filters.needs_review is not None:
        qs = qs.filter(needs_review=filters.needs_review)
    count_qs = qs
    if filters.tag:
        qs = qs.filter(_tagged(Person, filters.tag))
        # The count joins from the tag's own index: order does not matter for a count, and
        # walking people to test EXISTS on each took 4 ms to find 1,000 "customer"s at 1M
        # (0.8 ms this way; an IN over the tagged ids was far worse: it collects all of them).
        count_qs = count_qs.filter(tags__name=filters.tag)
    qs = qs.select_related("organisation", "owner")
    page = keyset_page(
        qs, PERSON_SORTS[filters.sort], cursor, limit, with_total=with_total, count_qs=count_qs
    )
    if saturated:
        page.total_capped = True  # more people match than the candidates looked at
    attach_primary_identities(page.items)
    return page


@dataclass(slots=True)
class OrgRef:
    """An organisation as a plain-SQL row names it (people and deals lists, board cards): its
    name and what the access check reads, so a private one's name can be left out."""

    pk: int
    name: str
    owner_id: int
    team_id: int | None
    visibility: str


@dataclass(slots=True)
class PersonRow:
    """A person as the list screen, the search box and the pickers show them: only the shown
    columns, read in plain SQL (see core.reads), with the primary email and phone."""

    pk: int
    first_name: str
    last_name: str
    title: str
    is_vip: bool
    needs_review: bool
    organisation_id: int | None
    organisation: OrgRef | None
    owner: str
    sort_key: str
    name_key: str
    created_at: Any
    primary_email: str = ""
    primary_phone: str = ""

    @property
    def id(self) -> int:
        return self.pk

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or "(no name)"

    def __str__(self) -> str:
        return self.full_name


_ROW_SELECT = (
    "SELECT p.id, p.first_name, p.last_name, p.title, p.is_vip, p.needs_review, p.organisation_id, "
    "p.sort_key, p.name_key, p.created_at, u.username, u.first_name, u.last_name, "
    "o.name, o.owner_id, o.team_id, o.visibility "
    "FROM {src} INNER JOIN accounts_user u ON u.id = p.owner_id "
    "LEFT OUTER JOIN people_organisation o ON o.id = p.organisation_id"
)
_TAGGED_SQL = (
    "EXISTS (SELECT 1 FROM people_person_tags pt INNER JOIN people_tag t ON t.id = pt.tag_id "
    "WHERE pt.person_id = p.id AND t.name = %s)"
)


def _text_candidates(user: User, text: str, limit: int) -> tuple[list[int], bool]:
    """Ids of people whose first/last name, or any identity, starts with `text`, at most
    `limit` per key, and whether a key reached `limit` (then counts are shown as "N+").

    Bounded: at most `limit` matches per key, which is what a person scanning results wants
    (type more letters to narrow down) and what keeps one keystroke cheap at a million rows.
    Name matches are limited to visible people already; identity matches are not (callers
    apply visibility to the page). Two bounded index range scans instead of one OR: with OR,
    SQLite gathers every match (a million for "a") and sorts them. Used by person_list (the
    ORM page) and person_rows (the plain-SQL page) alike."""
    text = text.strip()
    if "@" in text or any(ch.isdigit() for ch in text) and len(text) >= 6:
        value = text.lower()
        if text.startswith("+") or text.replace(" ", "").isdigit():
            try:
                value = normalise_phone(text)
            except IdentityError:
                value = text.replace(" ", "")
        cond, params = prefix_sql("i.value", value)
        ids = [
            r[0]
            for r in reads.fetch(
                f"SELECT i.person_id FROM people_identity i WHERE {cond} "  # noqa: S608
                "ORDER BY i.is_primary DESC, i.kind ASC, i.id ASC LIMIT %s",
                [*params, limit],
            )
        ]
        return ids, len(ids) >= limit
    vis, vis_params = reads.visibility_sql(user, "p")
    found: list[int] = []
    saturated = False
    for key in ("name_key", "sort_key"):
        cond, params = prefix_sql(f"p.{key}", text)
        ids = [
            r[0]
            for r in reads.fetch(
                f"SELECT p.id FROM people_person p WHERE {vis} AND p.merged_into_id IS NULL AND {cond} "  # noqa: S608
                f"ORDER BY p.{key} ASC, p.id ASC LIMIT %s",
                [*vis_params, *params, limit],
            )
        ]
        found += ids
        saturated = saturated or len(ids) >= limit
    return list(dict.fromkeys(found)), saturated


def person_rows(
    *,
    user: User,
    filters: PersonFilters,
    cursor: str | None = None,
    limit: int = 50,
    with_total: bool = True,
) -> Page[PersonRow]:
    """One page of people as PersonRow, for the list screen, search and pickers: the same rows,
    order and cursor as person_list (tests compare the two), read in plain SQL."""
    if filters.sort not in PERSON_SORTS:
        raise ActionError("Unknown sort order.", {"sort": [f"Choose one of {', '.join(PERSON_SORTS)}."]})
    limit = max(1, min(int(limit), 200))
    order = PERSON_SORTS[filters.sort]
    vis, params = reads.visibility_sql(user, "p")
    where = [vis, "p.merged_into_id IS NULL"]
    saturated = False
    if filters.q:
        ids, saturated = _text_candidates(user, filters.q, min(200, limit * 4))
        if not ids:
            return Page(items=[], next_cursor=None, total=0 if with_total else None)
        where.append(f"p.id IN ({reads.marks(ids)})")
        params += ids
    equal: list[tuple[str, object]] = []
    if filters.organisation:
        equal.append(("organisation_id", filters.organisation))
    if filters.owner:
        equal.append(("owner_id", filters.owner))
    if filters.vip is not None:
        equal.append(("is_vip", filters.vip))
    for column, value in equal:
        where.append(f"p.{column} = %s")
        params.append(value)
    if filters.needs_review is not None:
        # The bare column, as the partial index person_review_queue names it, so the review
        # queue is read from that index rather than by scanning everyone.
        where.append("p.needs_review" if filters.needs_review else "NOT p.needs_review")
    src = "people_person p"
    if filters.needs_review:
        src += reads.indexed_by("person_review_queue")
    total = capped = None
    if with_total:
        if filters.tag:
            # Joins from the tag's own index: order does not matter for a count (see person_list).
            count_sql = (
                f"SELECT COUNT(*) FROM (SELECT p.id FROM {src} "  # noqa: S608
                "INNER JOIN people_person_tags pt ON pt.person_id = p.id "
                "INNER JOIN people_tag t ON t.id = pt.tag_id "
                f"WHERE {' AND '.join(where)} AND t.name = %s LIMIT %s) sub"
            )
            count_params = [*params, filters.tag, pagination.CAP + 1]
        else:
            count_sql = (
                f"SELECT COUNT(*) FROM (SELECT p.id FROM {src} WHERE {' AND '.join(where)} "  # noqa: S608
                "LIMIT %s) sub"
            )
            count_params = [*params, pagination.CAP + 1]
        row = reads.fetch_one(count_sql, count_params)
        total = row[0] if row else 0
        capped = total > pagination.CAP
        total = min(total, pagination.CAP)
    if filters.tag:
        where.append(_TAGGED_SQL)
        params.append(filters.tag)
    after, after_params = reads.keyset_sql(order, "p", cursor, Person)
    if after:
        where.append(after)
        params += after_params
    found = reads.fetch(
        f"{_ROW_SELECT.format(src=src)} WHERE {' AND '.join(where)} ORDER BY {reads.order_sql(order, 'p')} LIMIT %s",  # noqa: S608
        [*params, limit + 1],
    )
    items = [
        PersonRow(
            pk=r[0], first_name=r[1], last_name=r[2], title=r[3], is_vip=bool(r[4]),
            needs_review=bool(r[5]), organisation_id=r[6], sort_key=r[7], name_key=r[8],
            created_at=reads.aware(r[9]),
            owner=f"{r[11]} {r[12]}".strip() or r[10],
            organisation=OrgRef(r[6], r[13], r[14], r[15], r[16]) if r[6] is not None else None,
        )
        for r in found[:limit]
    ]  # fmt: skip
    attach_primary_identities(items)
    page: Page[PersonRow] = Page(
        items=items,
        next_cursor=reads.next_cursor(items[-1], order) if len(found) > limit else None,
        total=total,
        total_capped=bool(capped) or saturated,
    )
    return page


def attach_primary_identities(people: "Sequence[Person | PersonRow]") -> None:
    """One query for the whole page: sets `primary_email` and `primary_phone` on each person
    (model instances or PersonRow): the primary identity of each kind, else the oldest."""
    by_id = {p.pk: p for p in people}
    for p in people:
        p.primary_email = ""
        p.primary_phone = ""
    if not by_id:
        return
    ids = list(by_id)
    for person_id, kind, value in reads.fetch(
        f"SELECT person_id, kind, value FROM people_identity WHERE person_id IN ({reads.marks(ids)}) "  # noqa: S608
        "AND kind IN ('email', 'phone') ORDER BY is_primary DESC, id ASC",
        ids,
    ):
        person = by_id[person_id]
        if kind == "email":
            if not person.primary_email:
                person.primary_email = value
        elif not person.primary_phone:
            person.primary_phone = value


def person_detail(*, user: User, person_id: Any) -> Person:
    qs = (
        people_visible(user)
        .select_related("organisation", "owner", "team")
        .prefetch_related("identities", "tags", "addresses", Prefetch("employments", queryset=_employments()))
    )
    return get_visible(Person, user, person_id, qs)


def _employments() -> QuerySet:
    from rapport.people.models import Employment

    return Employment.objects.select_related("organisation")


@dataclass
class OrgFilters:
    q: str = ""
    industry: str = ""
    tag: str = ""
    owner: int | None = None
    sort: str = "name"


def organisations_visible(user: User) -> QuerySet[Organisation]:
    return visible(Organisation, user).filter(merged_into__isnull=True)


def organisation_list(
    *, user: User, filters: OrgFilters, cursor: str | None = None, limit: int = 50, with_total: bool = True
) -> Page[Organisation]:
    if filters.sort not in ORG_SORTS:
        raise ActionError("Unknown sort order.", {"sort": [f"Choose one of {', '.join(ORG_SORTS)}."]})
    qs = organisations_visible(user)
    if filters.q:
        text = filters.q.strip().lower()
        if "." in text and " " not in text:
            from rapport.people.models import OrganisationDomain

            ids = OrganisationDomain.objects.filter(prefix_q("domain", text)).values_list(
                "organisation_id", flat=True
            )[:500]
            qs = qs.filter(pk__in=list(ids))
        else:
            qs = qs.filter(prefix_q("name_key", filters.q))
    if filters.industry:
        qs = qs.filter(industry=filters.industry)
    if filters.tag:
        qs = qs.filter(_tagged(Organisation, filters.tag))
    if filters.owner:
        qs = qs.filter(owner_id=filters.owner)
    return keyset_page(
        qs.select_related("owner", "parent"), ORG_SORTS[filters.sort], cursor, limit, with_total=with_total
    )


def organisation_detail(*, user: User, org_id: Any) -> Organisation:
    qs = (
        organisations_visible(user)
        .select_related("owner", "team", "parent")
        .prefetch_related("domains", "tags", "addresses")
    )
    return get_visible(Organisation, user, org_id, qs)


def person_by_identity(*, kind: str, value: str) -> Person | None:
    """Identity resolution for capture pipelines (not user-scoped: the system acts)."""
    ident = (
        Identity.objects.filter(kind=kind, value=value, person__merged_into__isnull=True)
        .select_related("person")
        .order_by("id")
        .first()
    )
    return ident.person if ident else None


@dataclass
class Link:
    """One relationship seen from `person`: the other end and the direction."""

    rel: Relationship
    other: Person
    direction: str  # "out" (person → other) or "in"


def relationships_of(*, user: User, person: Person, limit: int = 200) -> list[Link]:
    """Both directions, newest first; links to people `user` may not see are left out."""
    rels = list(
        Relationship.objects.filter(Q(from_person=person) | Q(to_person=person))
        .select_related("from_person", "to_person")
        .order_by("-created_at", "-id")[:limit]
    )
    links = [
        Link(r, r.to_person, "out") if r.from_person_id == person.pk else Link(r, r.from_person, "in")
        for r in rels
    ]
    seen = set(
        people_visible(user).filter(pk__in=[link.other.pk for link in links]).values_list("pk", flat=True)
    )
    return [link for link in links if link.other.pk in seen]


@dataclass(slots=True)
class PersonRef:
    """The other end of a relationship on a person's page: a link and a name."""

    pk: int
    first_name: str
    last_name: str

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or "(no name)"


@dataclass(slots=True)
class DealRole:
    """A deal the person takes part in, as their page lists it."""

    deal_id: int
    role: str
    name: str
    stage_name: str
    amount: Any
    currency: str


@dataclass
class PersonPage:
    person: Person
    tags: list[Tag]
    identities: list[Identity]
    employments: list[Any]
    addresses: list[Any]
    relationships: list[Link]
    deal_roles: list[DealRole]


def person_page(*, user: User, person_id: Any) -> PersonPage:
    """Everything a person's page shows about them, read in plain SQL (core.reads): through
    the ORM this was nine compiled queries and their model instances, two thirds of the page's
    CPU. The same access rules: the person must be visible (else 404); employments at
    organisations, relationships with people and deals the user may not see are left out."""
    from rapport.people.models import Address, Employment

    try:
        pk = int(person_id)
    except (TypeError, ValueError):
        raise Http404("Not found")
    vis, params = reads.visibility_sql(user, "people_person")
    found = reads.instances(
        Person,
        f"WHERE people_person.id = %s AND people_person.merged_into_id IS NULL AND {vis}",
        [pk, *params],
    )
    if not found:
        raise Http404("Not found")
    person = found[0]
    reads.attach(found, "organisation")
    reads.attach(found, "owner")
    reads.attach(found, "team")
    tags = reads.instances(
        Tag,
        "INNER JOIN people_person_tags pt ON pt.tag_id = people_tag.id WHERE pt.person_id = %s "
        "ORDER BY people_tag.name",
        [pk],
    )
    identities = reads.instances(
        Identity,
        "WHERE people_identity.person_id = %s ORDER BY people_identity.is_primary DESC, "
        "people_identity.kind, people_identity.id",
        [pk],
    )
    employments = reads.instances(
        Employment,
        "WHERE people_employment.person_id = %s ORDER BY people_employment.is_current DESC, "
        "people_employment.started_on DESC, people_employment.id DESC",
        [pk],
    )
    reads.attach(employments, "organisation")
    employments = [e for e in employments if can_see(user, e.organisation)]
    addresses = reads.instances(
        Address, "WHERE people_address.person_id = %s ORDER BY people_address.id", [pk]
    )
    return PersonPage(
        person=person,
        tags=tags,
        identities=identities,
        employments=employments,
        addresses=addresses,
        relationships=_relationship_links(user, person),
        deal_roles=_deal_roles(user, pk),
    )


def _relationship_links(user: User, person: Person, limit: int = 200) -> list[Link]:
    """relationships_of in plain SQL: both directions, newest first, visible others only."""
    rels = reads.instances(
        Relationship,
        "WHERE people_relationship.from_person_id = %s OR people_relationship.to_person_id = %s "
        "ORDER BY people_relationship.created_at DESC, people_relationship.id DESC LIMIT %s",
        [person.pk, person.pk, limit],
    )
    if not rels:
        return []
    others = {r.to_person_id if r.from_person_id == person.pk else r.from_person_id for r in rels}
    ids = list(others)
    vis, params = reads.visibility_sql(user, "p")
    refs = {
        row[0]: PersonRef(*row)
        for row in reads.fetch(
            f"SELECT p.id, p.first_name, p.last_name FROM people_person p "  # noqa: S608
            f"WHERE p.id IN ({reads.marks(ids)}) AND p.merged_into_id IS NULL AND {vis}",
            [*ids, *params],
        )
    }
    links = []
    for r in rels:
        out = r.from_person_id == person.pk
        other = refs.get(r.to_person_id if out else r.from_person_id)
        if other is not None:
            links.append(Link(r, other, "out" if out else "in"))  # type: ignore[arg-type]
    return links


def _deal_roles(user: User, person_id: int, limit: int = 50) -> list[DealRole]:
    vis, params = reads.visibility_sql(user, "d")
    rows = reads.fetch(
        "SELECT d.id, dp.role, d.name, s.name, d.amount, d.currency FROM sales_dealparticipant dp "  # noqa: S608
        "INNER JOIN sales_deal d ON d.id = dp.deal_id INNER JOIN sales_stage s ON s.id = d.stage_id "
        f"WHERE dp.person_id = %s AND {vis} ORDER BY d.created_at DESC, d.id DESC LIMIT %s",
        [person_id, *params, limit],
    )
    return [
        DealRole(i, role, name, stage, reads.decimal(amount), cur)
        for i, role, name, stage, amount, cur in rows
    ]


def relationship_of(*, user: User, person: Person, rel_id: Any) -> Link:
    """One relationship of `person` (either direction) whose other end `user` may see; else 404."""
    try:
        rel = (
            Relationship.objects.filter(Q(from_person=person) | Q(to_person=person), pk=rel_id)
            .select_related("from_person", "to_person")
            .get()
        )
    except (Relationship.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found")
    link = (
        Link(rel, rel.to_person, "out")
        if rel.from_person_id == person.pk
        else Link(rel, rel.from_person, "in")
    )
    if not people_visible(user).filter(pk=link.other.pk).exists():
        raise Http404("Not found")
    return link
