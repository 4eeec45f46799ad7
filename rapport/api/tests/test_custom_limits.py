"""Creating through the API checks custom fields as an edit does."""

import pytest

from rapport.people.actions import CUSTOM_MAX_KEYS
from rapport.people.models import Person

pytestmark = pytest.mark.django_db


def test_api_create_with_too_many_custom_fields_is_a_field_error(alice_api):
    response = alice_api.post(
        "/people", {"first_name": "Ann", "custom": {f"f{i}": "x" for i in range(CUSTOM_MAX_KEYS + 1)}}
    )
    assert response.status_code in (400, 422)
    assert "custom" in response.content.decode()
    assert not Person.objects.exists()
