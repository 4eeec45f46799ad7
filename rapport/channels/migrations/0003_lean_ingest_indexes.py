"""Index who replayed a payload only where someone did: every webhook wrote a NULL entry into
the foreign key's full index. Dropped by name (the same on SQLite and PostgreSQL): an
AlterField would rebuild the payload table on SQLite."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0002_stored_media"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="rawpayload",
                    name="replayed_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "channels_rawpayload_replayed_by_id_156d9ddb"',
                    reverse_sql='CREATE INDEX "channels_rawpayload_replayed_by_id_156d9ddb" '
                    'ON "channels_rawpayload" ("replayed_by_id")',
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="rawpayload",
            index=models.Index(
                condition=models.Q(("replayed_by__isnull", False)), fields=["replayed_by"], name="payload_replayed_by"
            ),
        ),
    ]
