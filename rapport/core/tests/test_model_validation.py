import pytest

from rapport.core.errors import ActionError
from rapport.people.actions import person_create, person_update
from rapport.people.models import Person


@pytest.mark.django_db
def test_a_model_validation_failure_is_a_field_error_and_changes_nothing(alice):
    person = person_create(actor=alice, first_name="Ann", last_name="Lee")
    with pytest.raises(ActionError) as exc:
        # Only the model's own validation (full_clean) knows "maybe" is not a boolean.
        person_update(actor=alice, person=person, data={"is_vip": "maybe"}, expected_version=1)
    assert "is_vip" in exc.value.field_errors
    assert Person.objects.get(pk=person.pk).version == 1
