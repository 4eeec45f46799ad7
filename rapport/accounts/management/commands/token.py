from django.core.management.base import BaseCommand, CommandError

from rapport.accounts.actions import token_create
from rapport.accounts.models import User


class Command(BaseCommand):
    help = "API tokens. `rapport token create USERNAME [--name NAME]` prints a new bearer token."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="cmd", required=True)
        create = sub.add_parser("create", help="Create a token for USERNAME and print it.")
        create.add_argument("username")
        create.add_argument("--name", default="cli")

    def handle(self, *args, **opts):
        user = User.objects.filter(username=opts["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {opts['username']!r}.")
        _, raw = token_create(user=user, name=opts["name"])
        self.stdout.write(raw)
