"""visible_person_ids is people_visible in plain SQL: the same people for every role."""

import pytest

from rapport.people.actions import person_create
from rapport.people.models import Person
from rapport.people.selectors import people_visible, visible_person_ids

pytestmark = pytest.mark.django_db


def test_the_same_people_as_people_visible_for_every_role(alice, bob, carol, reader, admin):
    people = [
        person_create(actor=actor, first_name=f"{actor.username}-{visibility}", visibility=visibility)
        for actor in (alice, bob, carol)
        for visibility in ("everyone", "team", "private")
    ]
    merged = person_create(actor=alice, first_name="Gone", visibility="everyone")
    Person.objects.filter(pk=merged.pk).update(merged_into=people[0])
    ids = {p.pk for p in people} | {merged.pk}
    for user in (alice, bob, carol, reader, admin):
        expected = set(people_visible(user).filter(pk__in=ids).values_list("pk", flat=True))
        assert visible_person_ids(user, ids) == expected, user.username
        assert visible_person_ids(user, list(ids)[:3]) == expected & set(list(ids)[:3])
    assert len(visible_person_ids(bob, ids)) < len(visible_person_ids(admin, ids)) == len(people)
    assert visible_person_ids(alice, set()) == set()
