"""manage.py apikey create --user NAME --name LABEL | revoke PREFIX | list [--user NAME]"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.keys import api_key_create, api_key_revoke
from accounts.models import ApiKey


class Command(BaseCommand):
    help = "Create, revoke or list API keys. The secret is printed once, at creation."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--user", required=True)
        create.add_argument("--name", required=True)
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")
        listing = sub.add_parser("list")
        listing.add_argument("--user")

    def handle(self, *args: object, **options: object) -> None:
        action = options["action"]
        if action == "create":
            try:
                user = get_user_model().objects.get(username=options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(
                    f"No user {options['user']!r}: create it with createsuperuser first."
                ) from None
            key, secret = api_key_create(owner=user, name=str(options["name"]))
            self.stdout.write(secret)
            self.stderr.write(f"Created key {key.prefix} for {user}: store it now, it is not shown again.")
        elif action == "revoke":
            if not api_key_revoke(prefix=str(options["prefix"])):
                raise CommandError(f"No active key with prefix {options['prefix']!r}.")
            self.stdout.write(f"Revoked {options['prefix']}.")
        else:
            keys = ApiKey.objects.select_related("owner")
            if options.get("user"):
                keys = keys.filter(owner__username=options["user"])
            for key in keys:
                state = "revoked" if key.revoked_at else "active"
                self.stdout.write(
                    f"{key.prefix}\t{key.owner}\t{key.name}\t{state}\t{key.last_used_at or '-'}"
                )
