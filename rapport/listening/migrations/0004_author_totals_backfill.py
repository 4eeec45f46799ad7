from django.db import migrations
from django.db.models import Max, Sum


def backfill(apps, schema_editor):
    """Author totals from the daily author rows already kept, so the dashboard's ranking
    starts complete on an existing installation."""
    AuthorDaily = apps.get_model("listening", "AuthorDaily")
    AuthorTotal = apps.get_model("listening", "AuthorTotal")
    rows = (
        AuthorDaily.objects.values("source_kind", "author_handle")
        .annotate(
            pos=Sum("positive"),
            neg=Sum("negative"),
            n=Sum("total"),
            inf=Max("influence"),
            name=Max("author_name"),
            person=Max("person_id"),
        )
        .order_by()
    )
    batch = []
    for r in rows.iterator(chunk_size=5000):
        batch.append(
            AuthorTotal(
                source_kind=r["source_kind"],
                author_handle=r["author_handle"],
                positive=r["pos"] or 0,
                negative=r["neg"] or 0,
                total=r["n"] or 0,
                influence=r["inf"] or 0.0,
                author_name=r["name"] or "",
                person_id=r["person"],
            )
        )
        if len(batch) >= 5000:
            AuthorTotal.objects.bulk_create(batch)
            batch = []
    AuthorTotal.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("listening", "0003_author_totals"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
