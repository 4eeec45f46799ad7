"""Big imports on SQLite rebuild secondary indexes once at the end; the result is the same
data with every index back, and a failure leaves the indexes as they were."""

import pytest
from django.db import connection

from rapport.imports import engine, kinds
from rapport.imports.models import ImportJob, ImportStatus
from rapport.people.models import Person

from .conftest import job_id_from, upload
from .test_import import PEOPLE, _configure, _import

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite-only optimisation")


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (%s, %s)",
            ["people_person", "people_identity"],
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_big_import_gives_the_same_result_and_keeps_every_index(alice_client, monkeypatch):
    before = _indexes()
    assert "person_sort" in before
    monkeypatch.setattr(engine, "DEFER_INDEXES_ROWS", 1)
    dropped = []
    real = engine.deferred_indexes

    def spy(enabled):
        dropped.append(enabled)
        return real(enabled)

    monkeypatch.setattr(engine, "deferred_indexes", spy)
    job = _import(alice_client, PEOPLE.encode(), on_duplicate="merge")
    assert job.status == ImportStatus.DONE, job.error
    assert True in dropped  # the real import ran with deferred indexes
    assert Person.objects.filter(first_name="Jane", last_name="Doe").exists()
    assert _indexes() == before


def test_a_failed_big_import_restores_the_indexes(alice_client, monkeypatch):
    before = _indexes()
    monkeypatch.setattr(engine, "DEFER_INDEXES_ROWS", 1)
    real_flush = kinds.PeopleImporter.flush

    def failing_flush(self):
        real_flush(self)
        if not self.dry:
            raise RuntimeError("disk full")

    monkeypatch.setattr(kinds.PeopleImporter, "flush", failing_flush)
    job_id = job_id_from(upload(alice_client, PEOPLE.encode()))
    _configure(alice_client, job_id)
    alice_client.post(f"/imports/{job_id}/start/")
    assert ImportJob.objects.get(pk=job_id).status == ImportStatus.FAILED
    assert not Person.objects.exists()
    assert _indexes() == before
