"""The word index over activity subjects (migration 0002) stays in step with every write and
keeps visibility: global search and `activities_matching` find activities by subject words."""

import pytest
from django.db import connection

from rapport.activities.actions import activity_log, activity_update
from rapport.activities.models import Activity
from rapport.activities.selectors import activities_matching
from rapport.people.actions import person_create
from rapport.web.search import global_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(alice):
    return person_create(actor=alice, first_name="Ann", last_name="Lee", visibility="everyone")


def _subjects(user, text):
    return sorted(a.subject for a in activities_matching(user, text))


def test_search_index_follows_writes(alice, ann):
    a = activity_log(actor=alice, kind="note", person=ann, subject="Quarterly zeppelin review")
    b = activity_log(actor=alice, kind="call", person=ann, subject="Call about the Zürich office")
    assert _subjects(alice, "zepp") == ["Quarterly zeppelin review"]
    assert _subjects(alice, "zür") == ["Call about the Zürich office"]
    assert _subjects(alice, "call zü") == ["Call about the Zürich office"]  # every word, as prefixes
    if connection.vendor == "sqlite":  # PostgreSQL's 'simple' configuration keeps accents
        assert _subjects(alice, "zurich") == ["Call about the Zürich office"]

    activity_update(
        actor=alice, activity=a, data={"subject": "Quarterly airship review"}, expected_version=a.version
    )
    assert _subjects(alice, "zeppelin") == []
    assert _subjects(alice, "airship") == ["Quarterly airship review"]

    Activity.objects.filter(pk=b.pk).update(subject="Renamed in bulk")  # no signals, no save()
    assert _subjects(alice, "zürich") == []
    assert _subjects(alice, "bulk") == ["Renamed in bulk"]

    Activity.objects.filter(pk=b.pk).delete()
    assert _subjects(alice, "bulk") == []


def test_bulk_created_activities_are_found(alice, ann):
    Activity.objects.bulk_create(
        [
            Activity(
                owner=alice, team=alice.teams.first(), kind="note", person=ann, subject=f"Import batch {i}"
            )
            for i in range(3)
        ]
    )
    assert len(_subjects(alice, "import batch")) == 3


def test_operators_and_punctuation_are_plain_words(alice, ann):
    activity_log(actor=alice, kind="note", person=ann, subject="NEAR the OR gate (AND more)")
    for text in ["NEAR", 'or "gate', "(and", "*", "gate)", "-", "'"]:
        _subjects(alice, text)  # never a syntax error from the index
    assert _subjects(alice, "near or") == ["NEAR the OR gate (AND more)"]
    assert _subjects(alice, "*") == [] and _subjects(alice, "  ") == []


def test_search_keeps_visibility(alice, bob, ann):
    activity_log(actor=alice, kind="note", person=ann, subject="Private zeppelin plan", visibility="private")
    activity_log(actor=bob, kind="note", person=ann, subject="Open zeppelin plan", visibility="everyone")
    assert _subjects(bob, "zeppelin") == ["Open zeppelin plan"]
    groups = {g.key: [r.title for r in g.results] for g in global_search(bob, "zeppelin")}
    assert groups["activities"] == ["Open zeppelin plan"]
    groups = {g.key: [r.title for r in g.results] for g in global_search(alice, "zeppelin")}
    assert sorted(groups["activities"]) == ["Open zeppelin plan", "Private zeppelin plan"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite keeps the index in FTS5 triggers")
def test_triggers_exist_after_all_migrations():
    # A later migration that rebuilds activities_activity would drop them with the old table.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'activities_activity'"
        )
        names = {row[0] for row in cur.fetchall()}
    assert {"activities_activity_fts_ai", "activities_activity_fts_ad", "activities_activity_fts_au"} <= names
