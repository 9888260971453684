"""``manage.py import_session FILE --owner USERNAME``: import a session export (``.json``, or a
retention archive's ``.json.gz``) as ``POST /api/sessions/import`` does — the same checks, the files
of a chat-session/3 export stored again as new attachments — without the request body limit
(``REQUEST_MAX_BYTES``), which an export carrying files can pass. The files count against the
owner's ``ATTACHMENT_DAILY_BYTES`` as an API import's do (``ATTACHMENT_DAILY_BYTES=0`` for the run
lifts it)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from conversations.api.serializers import SessionImportSerializer
from conversations.errors import TurnRejected
from conversations.session_writes import conversation_import


def _message(detail: Any) -> str:
    """The first error DRF found, as the API says it (``messages: messages[3] (id …): …``)."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        return f"{field}: {_message(value)}"
    if isinstance(detail, list):
        return _message(detail[0])
    return str(detail)


class Command(BaseCommand):
    help = "Import a session export (.json or a retention archive's .json.gz), its files included."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="The export: .json, or .json.gz (prune_sessions --archive-dir).")
        parser.add_argument(
            "--owner", default=None, help="The username it is imported for (default: no owner, anonymous)."
        )

    def handle(self, *args: Any, path: str, owner: str | None, **options: Any) -> None:
        owner_id = None
        if owner is not None:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No user {owner!r}: name an existing username, or leave --owner out.")
            owner_id = user.pk
        file = Path(path)
        try:
            raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
            data = orjson.loads(raw)
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CommandError(
                f"{path} cannot be read as a session export (JSON, or gzipped JSON): {exc}"
            ) from None
        serializer = SessionImportSerializer(data=data)
        if not serializer.is_valid():
            raise CommandError(f"{path}: {_message(serializer.errors)}")
        try:
            conversation = conversation_import(owner_id=owner_id, data=serializer.validated_data)
        except TurnRejected as exc:
            raise CommandError(f"{path}: {exc.message}") from None
        files = conversation.attachments.count()
        self.stdout.write(
            f"Imported {path} as session {conversation.session_key} "
            f"({conversation.message_count} messages, {files} attachments)."
        )
