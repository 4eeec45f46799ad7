"""person_rows (plain SQL, the list screen and search) must select exactly what person_list
(the ORM, the API and exports) selects: same people, same order, same cursors, same counts,
for every role. And the SQL twin of the access rule must agree with the Q object."""

import itertools

import pytest

from rapport.core import reads
from rapport.core.access import visible
from rapport.core.errors import ActionError
from rapport.people.actions import organisation_create, person_create
from rapport.people.models import Person, Tag
from rapport.people.selectors import PersonFilters, person_list, person_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(alice, bob, carol):
    tag = Tag.objects.create(name="customer")
    org = organisation_create(actor=bob, name="Hidden Org", visibility="private")
    made = []
    owners = itertools.cycle([alice, bob, carol])
    names = ["Mara Lee", "Maria Zed", "Marco Polo", "Ann Mars", "Zoe Mar", "Bo Ek", "Émile Marc", "Li Na"]
    for i, (name, vis) in enumerate(zip(names * 3, itertools.cycle(["everyone", "team", "private"]))):
        first, last = name.split()
        p = person_create(
            actor=next(owners),
            first_name=first,
            last_name=f"{last}{i}",
            visibility=vis,
            is_vip=i % 4 == 0,
            organisation=org if i % 5 == 0 else None,
            identities=[("email", f"{last.lower()}{i}@example.com"), ("phone", f"+44207946{i + 100:04d}")],
        )
        if i % 2:
            p.tags.add(tag)
        made.append(p)
    return made


FILTERS = [
    PersonFilters(),
    PersonFilters(sort="-name"),
    PersonFilters(sort="created"),
    PersonFilters(sort="-created"),
    PersonFilters(tag="customer"),
    PersonFilters(q="mar"),
    PersonFilters(q="lee0@exa"),
    PersonFilters(q="+442079460"),
    PersonFilters(vip=True),
    PersonFilters(needs_review=False, sort="-name"),
    PersonFilters(q="zzz"),
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f)[13:60])
def test_rows_match_the_orm_page_by_page(people, alice, bob, carol, reader, admin, filters):
    for user in (alice, bob, carol, reader, admin):
        cursor_orm = cursor_sql = None
        while True:
            orm = person_list(user=user, filters=filters, cursor=cursor_orm, limit=4)
            raw = person_rows(user=user, filters=filters, cursor=cursor_sql, limit=4)
            assert [p.pk for p in raw.items] == [p.pk for p in orm.items], (user, filters)
            assert (raw.total, raw.total_capped) == (orm.total, orm.total_capped)
            for r, o in zip(raw.items, orm.items, strict=True):
                assert (r.full_name, r.title, r.is_vip, r.owner, r.organisation_id) == (
                    o.full_name, o.title, o.is_vip, str(o.owner), o.organisation_id,
                )  # fmt: skip
                assert (r.primary_email, r.primary_phone) == (o.primary_email, o.primary_phone)
                assert r.created_at == o.created_at
            assert raw.next_cursor == orm.next_cursor
            if not orm.next_cursor:
                break
            cursor_orm, cursor_sql = orm.next_cursor, raw.next_cursor


def test_visibility_sql_selects_what_visibility_q_selects(people, alice, bob, carol, reader, admin):
    for user in (alice, bob, carol, reader, admin):
        vis, params = reads.visibility_sql(user, "p")
        ids = {r[0] for r in reads.fetch(f"SELECT p.id FROM people_person p WHERE {vis}", params)}  # noqa: S608
        assert ids == set(visible(Person, user).values_list("id", flat=True)), user


def test_bad_cursors_are_clear_errors(people, alice):
    from rapport.core.pagination import encode_cursor

    for cursor in ["!!!", encode_cursor(["a"]), encode_cursor([1, 2]), encode_cursor(["x", "y"])]:
        with pytest.raises(ActionError):
            person_rows(user=alice, filters=PersonFilters(), cursor=cursor)
    with pytest.raises(ActionError):  # text where a date belongs
        person_rows(user=alice, filters=PersonFilters(sort="created"), cursor=encode_cursor(["x", 1]))


def test_private_organisation_is_in_the_row_for_the_access_check(people, alice):
    rows = person_rows(user=alice, filters=PersonFilters(), limit=200).items
    with_org = [r for r in rows if r.organisation is not None]
    assert with_org and all(r.organisation.visibility == "private" for r in with_org)
