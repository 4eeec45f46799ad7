"""Keyset pages: every row exactly once across pages, ties on the first key included, and
pages after the first bounded on the first key so the index scan starts at the cursor."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.core.pagination import keyset_page
from rapport.people.actions import person_create
from rapport.people.models import Person

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("order", [["sort_key", "id"], ["-sort_key", "-id"]])
def test_every_row_once_across_pages_with_ties(alice, order):
    for i in range(7):
        person_create(actor=alice, first_name=f"A{i % 2}", last_name="Same" if i < 5 else f"Z{i}")
    seen, cursor = [], None
    while True:
        page = keyset_page(Person.objects.all(), order, cursor, 2)
        seen += [p.pk for p in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(Person.objects.values_list("pk", flat=True))
    assert len(seen) == len(set(seen)) == 7


def test_pages_after_the_first_bound_the_first_key(alice):
    for i in range(3):
        person_create(actor=alice, first_name="P", last_name=f"L{i}")
    cursor = keyset_page(Person.objects.all(), ["sort_key", "id"], None, 1).next_cursor
    with CaptureQueriesContext(connection) as ctx:
        keyset_page(Person.objects.all(), ["sort_key", "id"], cursor, 1)
    sql = ctx.captured_queries[-1]["sql"]
    assert '"people_person"."sort_key" >= ' in sql  # the range the index scan starts from
