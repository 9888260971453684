"""Sessions with attachments for the lifecycle tests: a storage of the test's own (so what a test
finds in it is what it stored, whatever other runs store meanwhile), and a message that sent a file,
stored and bound as a turn stores and binds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import storages

from conversations.attachments import store
from conversations.models import Attachment, Message
from conversations.turns.parts import file_part, text_part
from providers.base import InputFile


@pytest.fixture(name="media")
def media_fixture(tmp_path, settings) -> Path:
    """The attachment storage (the filesystem) in a directory of this test's own."""
    root = tmp_path / "attachments"
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "base_url": None},
        },
    }
    return root


def stored_names(root: Path) -> set[str]:
    """Every file under ``root`` (the test's attachment storage), by its storage name."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def is_stored(name: str) -> bool:
    return storages["attachments"].exists(name)


def stored_bytes(name: str) -> bytes:
    with storages["attachments"].open(name, "rb") as handle:
        return handle.read()


def upload(data: bytes, filename: str, *, owner_id: int | None = None) -> Attachment:
    """What ``POST /api/attachments`` stores: a checked file, not yet sent."""
    return store.save_bytes(
        data, filename=filename, declared_type=None, owner_id=owner_id, uploader_key="test:uploads"
    )


def send(message: Message, *attachments: Attachment, bind: bool = True) -> Message:
    """``message`` (a user message) sends these attachments: its file parts after its text, the
    rows bound to it (``bind=False``: resent, as an edit resends a file its original kept)."""
    parts = list(message.parts) or ([text_part(message.content)] if message.content else [])
    for row in attachments:
        parts.append(
            file_part(
                InputFile(
                    row.media_type, filename=row.filename, size=row.size, ref=str(row.id), sha256=row.sha256
                )
            )
        )
    Message.objects.filter(pk=message.pk).update(parts=parts)
    message.parts = parts
    if bind:
        store.bind([str(row.id) for row in attachments], message.conversation_id, message.pk)
        for row in attachments:
            row.refresh_from_db()
    return message
