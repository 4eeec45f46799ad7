import datetime as dt

from django.db import migrations


def backfill(apps, schema_editor):
    """Weekly author rows from the daily ones already kept, so the dashboard's ranking of
    short ranges starts complete on an existing installation."""
    AuthorDaily = apps.get_model("listening", "AuthorDaily")
    AuthorWeekly = apps.get_model("listening", "AuthorWeekly")
    weeks: dict = {}
    rows = AuthorDaily.objects.order_by().values_list(
        "day", "source_kind", "author_handle", "positive", "negative", "total", "influence"
    )
    for day, source, handle, pos, neg, total, inf in rows.iterator(chunk_size=5000):
        w = weeks.setdefault((day - dt.timedelta(days=day.weekday()), source, handle), [0, 0, 0, 0.0])
        w[0] += pos
        w[1] += neg
        w[2] += total
        w[3] = max(w[3], inf or 0.0)
    AuthorWeekly.objects.bulk_create(
        [
            AuthorWeekly(
                week=week, source_kind=source, author_handle=handle, positive=p, negative=n, total=t, influence=i
            )
            for (week, source, handle), (p, n, t, i) in weeks.items()
        ],
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("listening", "0006_author_weekly"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
