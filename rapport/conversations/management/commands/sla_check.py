from django.core.management.base import BaseCommand

from rapport.conversations.routing import sla_check


class Command(BaseCommand):
    help = (
        "Mark open conversations at risk or breached against their SLA; warn and escalate. Run every minute."
    )

    def handle(self, *args, **options):
        counts = sla_check()
        self.stdout.write(
            f"checked {counts['checked']}, at risk {counts['at_risk']}, breached {counts['breached']}"
        )
