from datetime import timedelta

from django.core.management.base import BaseCommand

from rapport.conversations.models import Delivery, Direction, Message


class Command(BaseCommand):
    help = (
        "Recovery sweep: process raw payloads stored but never processed (a killed worker, a lost job) "
        "and re-queue outbound messages still waiting. Idempotent; safe to run from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=60, help="Seconds a payload must have waited.")

    def handle(self, *args, **options):
        from rapport.conversations.actions import message_deliver
        from rapport.conversations.ingest import process_pending

        done = process_pending(older_than=timedelta(seconds=options["older_than"]))
        sent = 0
        for pk in Message.objects.filter(
            direction=Direction.OUTBOUND, delivery_status=Delivery.QUEUED
        ).values_list("pk", flat=True)[:1000]:
            sent += message_deliver(message_id=pk) == "sent"
        self.stdout.write(f"payloads processed {done}, messages sent {sent}")
