"""``manage.py prune_attachments``: delete uploads never sent in a message once they are older than
``ATTACHMENT_UNSENT_HOURS`` (each upload also deletes a few on its way; run this from cron to keep
the storage clean on a server that sees few uploads). Sent attachments go with their session."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.attachments.store import sweep_unsent


class Command(BaseCommand):
    help = "Delete uploads never sent in a message, older than ATTACHMENT_UNSENT_HOURS."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--hours",
            type=int,
            default=None,
            help=f"Age in hours (default ATTACHMENT_UNSENT_HOURS, {settings.ATTACHMENT_UNSENT_HOURS}).",
        )

    def handle(self, *args, hours: int | None = None, **options) -> None:
        deleted = sweep_unsent(limit=None, hours=hours)
        self.stdout.write(f"{deleted} unsent attachment(s) deleted.")
