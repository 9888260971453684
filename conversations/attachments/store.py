"""Attachments kept and found: a checked file saved to the attachment storage with its row, the
rows a caller may send or read, the daily byte limit, and the files deleted with their rows.

Everything here is synchronous (the storage API and the ORM): async callers go through
:func:`conversations.db.run_db`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from conversations.attachments.checks import AttachmentRefused, examine
from conversations.models import Attachment

logger = logging.getLogger(__name__)

EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
FILENAME_LENGTH = 255


def attachment_storage() -> Storage:
    return storages["attachments"]


def _sha256(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(1024 * 1024):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def clean_filename(filename: str) -> str:
    """The name as shown and offered on download: its last path segment, printable, ≤ 255 chars."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"\x00')
    return name.strip()[:FILENAME_LENGTH]


def check_daily_bytes(uploader_key: str, size: int) -> None:
    """``ATTACHMENT_DAILY_BYTES`` for who stores it, over the last 24 hours (0: no limit)."""
    limit = settings.ATTACHMENT_DAILY_BYTES
    if not limit:
        return
    since = timezone.now() - timedelta(days=1)
    used = (
        Attachment.objects.filter(uploader_key=uploader_key, created_at__gte=since).aggregate(
            total=Sum("size")
        )["total"]
        or 0
    )
    if used + size > limit:
        raise AttachmentRefused(
            f"This file ({size} bytes) would take today's attachments to {used + size} bytes, over the "
            f"{limit}-byte daily limit (ATTACHMENT_DAILY_BYTES): retry tomorrow, or send a smaller file.",
            code="attachment_quota_exceeded",
            status=429,
        )


def save_attachment(
    file: BinaryIO,
    *,
    size: int,
    filename: str,
    declared_type: str | None,
    owner_id: int | None,
    uploader_key: str,
    source_url: str = "",
    where: str = "file",
) -> Attachment:
    """Check ``file`` (:func:`~conversations.attachments.checks.examine`), then save its bytes as
    they are and its row; :class:`AttachmentRefused` stores nothing."""
    filename = clean_filename(filename)
    examined = examine(file, size=size, filename=filename, declared=declared_type, where=where)
    check_daily_bytes(uploader_key, size)
    attachment_id = uuid.uuid4()
    now = timezone.now()
    name = f"{now:%Y/%m/%d}/{attachment_id.hex}{EXTENSIONS[examined.media_type]}"
    sha256 = _sha256(file)
    stored = attachment_storage().save(name, File(file, name=name))
    try:
        return Attachment.objects.create(
            id=attachment_id,
            owner_id=owner_id,
            uploader_key=uploader_key,
            storage_name=stored,
            media_type=examined.media_type,
            filename=filename or f"attachment{EXTENSIONS[examined.media_type]}",
            size=size,
            sha256=sha256,
            width=examined.width,
            height=examined.height,
            source_url=source_url,
            created_at=now,
        )
    except Exception:
        attachment_storage().delete(stored)
        raise


def save_bytes(data: bytes, **fields) -> Attachment:
    """:func:`save_attachment` of bytes in memory (a data URL, a fetched URL)."""
    return save_attachment(io.BytesIO(data), size=len(data), **fields)


def readable(owner_id: int | None) -> Q:
    """The attachments a caller may read: its own (sent or not). Owner-less callers share 'no owner',
    as their sessions do."""
    return Q(owner__isnull=True) if owner_id is None else Q(owner_id=owner_id)


def sendable(ids: Sequence[str], owner_id: int | None, session_key: str) -> dict[str, Attachment]:
    """The caller's attachments among ``ids`` that a message of session ``session_key`` may send:
    unsent ones, and ones already sent in that same session (an edit resends them)."""
    rows = Attachment.objects.filter(readable(owner_id), id__in=ids).select_related("conversation")
    return {
        str(row.id): row
        for row in rows
        if row.message_id is None
        or (row.conversation is not None and row.conversation.session_key == session_key)
    }


def read_bytes(storage_names: Iterable[str]) -> dict[str, bytes]:
    """The stored files' bytes, by storage name; a file no longer in storage is left out (logged)."""
    storage = attachment_storage()
    out: dict[str, bytes] = {}
    for name in storage_names:
        try:
            with storage.open(name, "rb") as handle:
                out[name] = handle.read()
        except FileNotFoundError:
            logger.warning("attachment file %s is no longer in storage", name)
    return out


def bind(ids: Sequence[str], conversation_id: str, message_id: str) -> int:
    """The unsent attachments among ``ids`` now belong to the message that sent them."""
    return Attachment.objects.filter(id__in=ids, message__isnull=True).update(
        conversation_id=conversation_id, message_id=message_id
    )


def delete_files(storage_names: Iterable[str]) -> None:
    """Delete stored files once the transaction that deleted their rows commits (a file whose
    delete fails is logged: ``manage.py prune_attachments`` sweeps what rows no longer name)."""
    names = [name for name in storage_names if name]
    if not names:
        return

    def delete() -> None:
        storage = attachment_storage()
        for name in names:
            try:
                storage.delete(name)
            except Exception:
                logger.exception("attachment file %s could not be deleted", name)

    transaction.on_commit(delete)


def delete_attachments(queryset) -> int:
    """Delete these rows and, after commit, their files (:func:`file_follows_row`)."""
    count, _ = queryset.delete()
    return count


def file_follows_row(sender, instance: Attachment, **kwargs) -> None:
    """``post_delete`` of an attachment row, however it goes (a queryset, the admin, a user's or a
    session's cascade through the ORM): its file is deleted once the delete commits. The raw-SQL
    session delete (``session_writes.conversation_delete``) names its files itself."""
    delete_files([instance.storage_name])


def unsent_before(hours: int | None = None):
    """Uploads never sent in a message, older than ``ATTACHMENT_UNSENT_HOURS``."""
    hours = settings.ATTACHMENT_UNSENT_HOURS if hours is None else hours
    return Attachment.objects.filter(
        message__isnull=True, created_at__lt=timezone.now() - timedelta(hours=hours)
    )


SWEEP_BATCH = 50  # unsent uploads an upload deletes on its way (manage.py prune_attachments: all)


def sweep_unsent(limit: int | None = SWEEP_BATCH, hours: int | None = None) -> int:
    """Delete uploads never sent that are past ``ATTACHMENT_UNSENT_HOURS`` (at most ``limit``)."""
    expired = unsent_before(hours)
    ids = list(
        expired.values_list("id", flat=True)[:limit] if limit else expired.values_list("id", flat=True)
    )
    if not ids:
        return 0
    return delete_attachments(Attachment.objects.filter(id__in=ids, message__isnull=True))
