"""Custom fields get the same limits whatever the way in: edit, create (UI/API) or import."""

import pytest

from rapport.core.errors import ActionError
from rapport.imports.models import ImportJob, ImportStatus
from rapport.people.actions import CUSTOM_MAX_KEYS, CUSTOM_VALUE_MAX, person_create
from rapport.people.models import Person

from .conftest import job_id_from, upload

pytestmark = pytest.mark.django_db


def test_create_checks_custom_fields_like_an_edit(alice):
    with pytest.raises(ActionError) as exc:
        person_create(actor=alice, first_name="Ann", custom={f"f{i}": "x" for i in range(CUSTOM_MAX_KEYS + 1)})
    assert "custom" in exc.value.field_errors
    with pytest.raises(ActionError):
        person_create(actor=alice, first_name="Ann", custom={"notes": "x" * (CUSTOM_VALUE_MAX + 1)})
    assert not Person.objects.exists()
    assert person_create(actor=alice, first_name="Ann", custom={" shoe size ": 42}).custom == {"shoe size": 42}


def test_import_reports_an_oversized_custom_value_as_a_row_error(alice_client):
    csv = f"First name,Notes\nAnn,short\nBob,{'y' * (CUSTOM_VALUE_MAX + 5)}\n".encode()
    job_id = job_id_from(upload(alice_client, csv))
    job = ImportJob.objects.get(pk=job_id)
    data = {"col_0": "first_name", "col_1": "custom", "on_duplicate": "skip", "visibility": "everyone"}
    assert alice_client.post(f"/imports/{job_id}/", data).status_code == 302
    assert ImportJob.objects.get(pk=job_id).status == ImportStatus.ANALYSED
    alice_client.post(f"/imports/{job_id}/start/")
    job = ImportJob.objects.get(pk=job_id)
    assert (job.created, job.failed) == (1, 1)
    assert Person.objects.get().custom == {"Notes": "short"}
    report = b"".join(alice_client.get(f"/imports/{job.pk}/errors.csv").streaming_content).decode("utf-8-sig")
    assert f"At most {CUSTOM_VALUE_MAX} characters" in report
