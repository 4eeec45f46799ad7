"""Fewer indexes on messages, each of which every ingested message writes: the conversation
and channel columns' own indexes repeat msg_conversation and msg_thread (which start with
them), and author_user and delivery_status are indexed only where a query looks (outbound
authors, queued replies). The foreign keys' indexes are dropped by name, which Django gives
the same on SQLite and PostgreSQL: an AlterField would rebuild the whole table on SQLite."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (index, column) of the foreign keys' own indexes that go.
_DROPPED = [
    ("conversations_message_author_user_id_a169817f", "author_user_id"),
    ("conversations_message_channel_id_9f8b2eeb", "channel_id"),
    ("conversations_message_conversation_id_f1a2d5e9", "conversation_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0003_lean_ingest_indexes"),
        ("conversations", "0005_inbox_recent_indexes"),
        ("people", "0004_person_review_queue_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="message", name="msg_delivery"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="author_user",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="channel",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="messages",
                        to="channels.channel",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="conversations.conversation",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "conversations_message" ("{column}")',
                )
                for name, column in _DROPPED
            ],
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("delivery_status", "queued")), fields=["delivery_status"], name="msg_queued"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("author_user__isnull", False)), fields=["author_user"], name="msg_author_user"
            ),
        ),
    ]
