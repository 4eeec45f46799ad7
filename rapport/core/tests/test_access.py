import pytest

from rapport.core.access import can_edit, visible
from rapport.core.errors import ActionError, ConflictError
from rapport.people.actions import person_create, person_update
from rapport.people.models import Person
from rapport.sales.actions import deal_create
from rapport.sales.models import Deal


@pytest.mark.django_db
def test_private_deal_is_invisible_to_other_team(alice, bob, carol, admin):
    deal = deal_create(actor=alice, name="Secret expansion", amount=1000, visibility="private")
    assert deal.team.name == "North"
    assert not visible(Deal, bob).filter(pk=deal.pk).exists()
    assert visible(Deal, alice).filter(pk=deal.pk).exists()
    assert visible(Deal, carol).filter(pk=deal.pk).exists()  # manager of North sees the team's private work
    assert visible(Deal, admin).filter(pk=deal.pk).exists()
    assert not can_edit(bob, deal)


@pytest.mark.django_db
def test_team_record_visible_to_team_only(alice, bob, reader):
    person = person_create(actor=alice, first_name="Team", last_name="Only", visibility="team")
    assert visible(Person, reader).filter(pk=person.pk).exists()
    assert not visible(Person, bob).filter(pk=person.pk).exists()
    assert not can_edit(reader, person)


@pytest.mark.django_db
def test_stale_save_is_a_conflict_not_an_overwrite(alice):
    person = person_create(actor=alice, first_name="Ann", last_name="Lee")
    first = Person.objects.get(pk=person.pk)
    second = Person.objects.get(pk=person.pk)
    person_update(actor=alice, person=first, data={"title": "CTO"}, expected_version=1)
    with pytest.raises(ConflictError):
        person_update(actor=alice, person=second, data={"title": "CFO"}, expected_version=1)
    assert Person.objects.get(pk=person.pk).title == "CTO"


@pytest.mark.django_db
def test_rep_cannot_assign_record_to_someone_else(alice, bob):
    with pytest.raises(ActionError):
        person_create(actor=alice, first_name="X", owner=bob)
    assert not Person.objects.exists()


@pytest.mark.django_db
def test_identities_are_normalised_and_invalid_ones_rejected(alice):
    p = person_create(
        actor=alice,
        first_name="Zoë",
        identities=[("email", "Zoe@Example.COM"), ("phone", "+44 20 7946 0958"), ("x", "@ZoeX")],
    )
    assert sorted(p.identities.values_list("value", flat=True)) == [
        "+442079460958",
        "zoe@example.com",
        "zoex",
    ]
    with pytest.raises(ActionError) as exc:
        person_create(actor=alice, first_name="Bad", identities=[("email", "not-an-email"), ("phone", "12")])
    assert len(exc.value.field_errors["identities"]) == 2
