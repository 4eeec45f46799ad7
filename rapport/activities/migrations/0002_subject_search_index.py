"""A word index over activity subjects, so the global search finds any activity by the words
of its subject instead of scanning the most recent few thousand.

SQLite: an FTS5 table holding only the index (external content: the subject stays in
activities_activity), kept in step by triggers, so every write path — forms, API, imports,
bulk seeding, raw SQL — updates it. PostgreSQL: a GIN index over to_tsvector('simple', …).

A later migration that rebuilds activities_activity on SQLite (Django does that for many
ALTERs) drops these triggers with the old table: test_search_index_follows_writes fails
then, and the migration must re-create them (see TRIGGERS)."""

from django.db import migrations

FTS = "activities_activity_fts"
TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS {FTS}_ai AFTER INSERT ON activities_activity BEGIN
        INSERT INTO {FTS}(rowid, subject) VALUES (new.id, new.subject); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS}_ad AFTER DELETE ON activities_activity BEGIN
        INSERT INTO {FTS}({FTS}, rowid, subject) VALUES ('delete', old.id, old.subject); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS}_au AFTER UPDATE OF subject ON activities_activity BEGIN
        INSERT INTO {FTS}({FTS}, rowid, subject) VALUES ('delete', old.id, old.subject);
        INSERT INTO {FTS}(rowid, subject) VALUES (new.id, new.subject); END""",
]


def forwards(apps, schema_editor):
    conn = schema_editor.connection
    with conn.cursor() as cur:
        if conn.vendor == "sqlite":
            cur.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5(subject, content='activities_activity', "
                "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
            )
            for sql in TRIGGERS:
                cur.execute(sql)
            cur.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
        elif conn.vendor == "postgresql":
            cur.execute(
                "CREATE INDEX IF NOT EXISTS activity_subject_words ON activities_activity "
                "USING gin (to_tsvector('simple', subject))"
            )


def backwards(apps, schema_editor):
    conn = schema_editor.connection
    with conn.cursor() as cur:
        if conn.vendor == "sqlite":
            for suffix in ("ai", "ad", "au"):
                cur.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
            cur.execute(f"DROP TABLE IF EXISTS {FTS}")
        elif conn.vendor == "postgresql":
            cur.execute("DROP INDEX IF EXISTS activity_subject_words")


class Migration(migrations.Migration):
    dependencies = [("activities", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
