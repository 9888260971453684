"""``manage.py prune_sessions``: delete (or archive, then delete) sessions untouched for N days, in
batches. N is ``--days`` or the ``RETENTION_DAYS`` setting (0: keep everything); with
``--archive-dir`` (or ``RETENTION_ARCHIVE_DIR``) each session is first written there as its export
(``<owner or anonymous>/<session key>.json.gz``, the import format: chat-session/3, its attachments'
bytes included; ``manage.py import_session`` restores one). A deleted session's attachments go
with it, their files deleted from the storage. Schedule it (cron, a Kubernetes CronJob); a session
with an answer still streaming is skipped."""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.session_writes import conversation_delete, conversation_export_stream

UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Command(BaseCommand):
    help = "Delete (or archive and delete) sessions untouched for N days, in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="Untouched for this many days (default: RETENTION_DAYS)."
        )
        parser.add_argument("--archive-dir", default=None, help="Write each session's export here first.")
        parser.add_argument("--batch", type=int, default=100, help="Sessions per batch (default 100).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; change nothing.")

    def handle(
        self, *args: Any, days: int | None, archive_dir: str | None, batch: int, dry_run: bool, **_: Any
    ) -> None:
        days = settings.RETENTION_DAYS if days is None else days
        if days <= 0:
            raise CommandError("No retention: set RETENTION_DAYS (or pass --days N, N > 0).")
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        archive = archive_dir or settings.RETENTION_ARCHIVE_DIR or None
        cutoff = timezone.now() - timedelta(days=days)
        streaming = Message.objects.filter(status=Message.Status.STREAMING).values("conversation_id")
        stale = (
            Conversation.objects.filter(updated_at__lt=cutoff)
            .exclude(pk__in=streaming)
            .order_by("updated_at")
        )
        if dry_run:
            self.stdout.write(
                f"{stale.count()} sessions untouched since {cutoff:%Y-%m-%d %H:%M} would be removed."
            )
            return
        removed = 0
        while batch_rows := list(stale[:batch]):
            for conversation in batch_rows:
                if archive:
                    self._archive(conversation, Path(archive))
                conversation_delete(conversation)
                removed += 1
        action = "archived and deleted" if archive else "deleted"
        self.stdout.write(f"{removed} sessions untouched since {cutoff:%Y-%m-%d %H:%M} {action}.")

    def _archive(self, conversation: Conversation, root: Path) -> None:
        owner = str(conversation.owner_id) if conversation.owner_id is not None else "anonymous"
        folder = root / owner
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{UNSAFE.sub('_', conversation.session_key)}-{conversation.pk.hex[:8]}.json.gz"
        with gzip.open(path, "wb") as out:
            for chunk in conversation_export_stream(conversation):
                out.write(chunk)
