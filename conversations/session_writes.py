"""Writes of a session outside its turns, each one thread hop and one transaction (HackSoft style:
entity first): create, export, import, delete (a session, a message), the stored greeting. A
turn's own writes are in :mod:`conversations.turns.orm_writes`.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator, Sequence
from functools import reduce
from operator import or_

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.callers import rate_limit_key
from conversations.attachments import store
from conversations.attachments.checks import AttachmentRefused
from conversations.attachments.store import delete_files
from conversations.counters import sessions_recount
from conversations.models import Artifact, Attachment, Conversation, Message
from conversations.namespaces import require_creatable_key
from conversations.turns.parts import file_part
from providers.base import InputFile

logger = logging.getLogger(__name__)

# The export's format, written by every export; an import reads each of SESSION_EXPORT_FORMATS.
# 3 (issue 32): a user message's ``file`` parts (its attachments) each carry the file's bytes,
# base64, as ``data``: the export is the whole archive, and import restores the files (checked as
# uploads are, each a new attachment). 2 (issue 30): a message may carry ``parts`` (its tool calls,
# a tool message's results; left out when the content is its only part) and the role ``tool``.
# 1: text messages only.
SESSION_EXPORT_FORMAT = "chat-session/3"
SESSION_EXPORT_FORMATS = ("chat-session/1", "chat-session/2", SESSION_EXPORT_FORMAT)
PARTS_FORMATS = ("chat-session/2", SESSION_EXPORT_FORMAT)  # the formats whose messages carry parts
FILES_FORMATS = (SESSION_EXPORT_FORMAT,)  # the formats whose parts may be files (with their bytes)


def conversation_create(*, owner_id: int | None, session_key: str, **fields: object) -> Conversation:
    require_creatable_key(owner_id, session_key)
    try:
        with transaction.atomic():
            return Conversation.objects.create(owner_id=owner_id, session_key=session_key, **fields)
    except IntegrityError:
        from conversations.errors import TurnRejected

        raise TurnRejected(
            f"A session with key {session_key!r} already exists: choose another key or omit it.",
            code="session_exists",
            status=409,
        ) from None


EXPORT_CHUNK = 2000  # messages read (with their artifacts) per query while an export streams
EXPORT_FLUSH_BYTES = 1024 * 1024  # a streamed export writes what it holds past this (files are large)


def _session_fields(conversation: Conversation) -> dict:
    return {
        "session_key": conversation.session_key,
        "title": conversation.title,
        "provider": conversation.provider,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "metadata": conversation.metadata,
        "created_at": conversation.created_at.isoformat(),
    }


MESSAGE_FIELDS = (
    "id",
    "parent_id",
    "role",
    "content",
    "parts",
    "status",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "usage_estimated",
    "finish_reason",
    "error_code",
    "error_message",
    "created_at",
    "completed_at",
)


def _message_fields(row: tuple, artifacts: list[dict]) -> dict:
    m = dict(zip(MESSAGE_FIELDS, row, strict=True))
    m["id"] = str(m["id"])
    m["parent_id"] = str(m["parent_id"]) if m["parent_id"] else None
    if not m["parts"]:  # a text message: its content is its one part
        del m["parts"]
    m["created_at"] = m["created_at"].isoformat()
    m["completed_at"] = m["completed_at"].isoformat() if m["completed_at"] else None
    m["artifacts"] = artifacts
    return m


def _messages_in_order(conversation: Conversation) -> Iterator[dict]:
    """Every message (every branch) oldest first with its artifacts, :data:`EXPORT_CHUNK` at a time:
    plain rows (no model instances) and one artifact query per chunk."""
    rows = conversation.messages.order_by("created_at", "id").values_list(*MESSAGE_FIELDS)
    chunk: list[tuple] = []
    for row in rows.iterator(chunk_size=EXPORT_CHUNK):
        chunk.append(row)
        if len(chunk) >= EXPORT_CHUNK:
            yield from _with_artifacts(chunk, conversation.pk)
            chunk = []
    yield from _with_artifacts(chunk, conversation.pk)


PARTS_INDEX = MESSAGE_FIELDS.index("parts")


def _file_ids(parts: object) -> list[str]:
    return [p["id"] for p in parts or () if isinstance(p, dict) and p.get("type") == "file" and p.get("id")]


def _with_artifacts(chunk: list[tuple], conversation_id: uuid.UUID) -> Iterator[dict]:
    """The chunk's messages with their artifacts and, read as each message is yielded (so a
    streamed export holds one message's files at a time), their files' bytes: the session's own
    attachments only."""
    if not chunk:
        return
    found: dict = {}
    file_ids = [file_id for row in chunk for file_id in _file_ids(row[PARTS_INDEX])]
    storage_names = (
        {
            str(attachment_id): name
            for attachment_id, name in Attachment.objects.filter(
                id__in=file_ids, conversation_id=conversation_id
            ).values_list("id", "storage_name")
        }
        if file_ids
        else {}
    )
    artifacts = (
        Artifact.objects.filter(message_id__in=[row[0] for row in chunk])
        .order_by("message_id", "position")
        .values_list("message_id", "position", "language", "filename", "content")
    )
    for message_id, position, language, filename, content in artifacts:
        found.setdefault(message_id, []).append(
            {"position": position, "language": language, "filename": filename, "content": content}
        )
    for row in chunk:
        message = _message_fields(row, found.get(row[0], []))
        if "parts" in message and storage_names:
            message["parts"] = [_with_file_data(part, storage_names) for part in message["parts"]]
        yield message


def _with_file_data(part: dict, storage_names: dict[str, str]) -> dict:
    """A ``file`` part with its file's bytes as ``data`` (base64); other parts as they are. A file
    no longer stored is written without ``data`` (logged): its import then says so, by message
    and part, instead of restoring a part whose file is gone."""
    if part.get("type") != "file":
        return part
    name = storage_names.get(part.get("id", ""))
    try:
        if not name:
            raise FileNotFoundError(part.get("id"))
        with store.attachment_storage().open(name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        logger.warning("export: the file of attachment %s is no longer stored", part.get("id"))
        return part
    return {**part, "data": base64.b64encode(data).decode("ascii")}


def conversation_export(conversation: Conversation) -> dict:
    """The session, its messages (every branch, with parent ids) with their files' bytes, and their
    artifacts, as plain JSON (in memory: a session with attachments is exported streamed,
    :func:`conversation_export_stream`)."""
    return {
        "format": SESSION_EXPORT_FORMAT,
        "session": _session_fields(conversation),
        "messages": list(_messages_in_order(conversation)),
    }


def conversation_export_stream(conversation: Conversation) -> Iterator[bytes]:
    """:func:`conversation_export` as JSON text written as it is read: memory stays flat for a session
    of any size (a chunk of messages at a time, and at most one message's files)."""
    head = orjson.dumps({"format": SESSION_EXPORT_FORMAT, "session": _session_fields(conversation)})
    yield head[:-1] + b', "messages": ['
    batch: list[bytes] = []
    held = 0
    first = True
    for message in _messages_in_order(conversation):
        batch.append(orjson.dumps(message))
        held += len(batch[-1])
        if len(batch) >= EXPORT_CHUNK or held >= EXPORT_FLUSH_BYTES:
            yield (b"" if first else b",") + b",".join(batch)
            batch, held, first = [], 0, False
    if batch:
        yield (b"" if first else b",") + b",".join(batch)
    yield b"]}"


@transaction.atomic
def conversation_delete(conversation: Conversation) -> None:
    """Delete a session with its messages, artifacts and attachments (their files once this commits)
    in a statement a table, whatever its size (the ORM's cascade would load every message first: a
    session of 100,000 messages took minutes)."""
    key = Conversation._meta.pk.get_db_prep_value(conversation.pk, connection)  # a UUID, or its hex on SQLite
    files = Attachment.objects.filter(conversation_id=conversation.pk)
    delete_files(files.values_list("storage_name", flat=True))  # once the rows' delete commits
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Attachment._meta.db_table} WHERE conversation_id = %s", [key])
        cursor.execute(f"DELETE FROM {Artifact._meta.db_table} WHERE conversation_id = %s", [key])
        cursor.execute(f"DELETE FROM {Message._meta.db_table} WHERE conversation_id = %s", [key])
        cursor.execute(f"DELETE FROM {Conversation._meta.db_table} WHERE id = %s", [key])


@transaction.atomic
def message_delete(message: Message) -> None:
    """Delete one message with its artifacts and its attachments, their files once this commits (its
    children stay, their parent unset). An attachment another message of the session still sends
    (an edit that resent it) is not deleted: it passes to the oldest such message, so no message
    shows a file that is gone."""
    conversation_id = message.conversation_id
    sent = [str(pk) for pk in Attachment.objects.filter(message_id=message.pk).values_list("id", flat=True)]
    if sent:
        for attachment_id, sender in _other_senders(message, sent).items():
            Attachment.objects.filter(pk=attachment_id).update(message_id=sender)
        store.delete_attachments(Attachment.objects.filter(message_id=message.pk))
    message.delete()
    sessions_recount([conversation_id])


def _other_senders(message: Message, attachment_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    """The oldest other message of ``message``'s session whose file parts name each of these
    attachments, by attachment id (those none names are left out)."""
    named = reduce(or_, (Q(parts_text__contains=attachment_id) for attachment_id in attachment_ids))
    others = (
        Message.objects.filter(conversation_id=message.conversation_id, role=Message.Role.USER)
        .exclude(pk=message.pk)
        .annotate(parts_text=Cast("parts", TextField()))
        .filter(named)
        .order_by("created_at", "id")
        .values_list("id", "parts")
    )
    senders: dict[str, uuid.UUID] = {}
    for message_id, parts in others:
        for attachment_id in _file_ids(parts):
            if attachment_id in attachment_ids:
                senders.setdefault(attachment_id, message_id)
    return senders


def conversation_import(*, owner_id: int | None, data: dict, uploader_key: str | None = None) -> Conversation:
    """A new session from an export (validated by the API). New ids; parents and order kept; each
    file (chat-session/3) stored again through the attachment store, as an upload is (its checks,
    the daily bytes of ``uploader_key``: by default the owner's), as a new attachment of its
    message. All or nothing: on any refusal the files already stored are deleted with the rows."""
    saved: list[str] = []
    uploader = uploader_key or rate_limit_key(None, owner_id) or "anonymous"
    try:
        with transaction.atomic():
            return _import(owner_id, data, uploader, saved)
    except BaseException:
        _delete_now(saved)
        raise


def _delete_now(storage_names: Sequence[str]) -> None:
    """Files whose rows were rolled back (no commit to wait for)."""
    storage = store.attachment_storage()
    for name in storage_names:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("import: the file %s of a refused import could not be deleted", name)


def _import(owner_id: int | None, data: dict, uploader_key: str, saved: list[str]) -> Conversation:
    session = data["session"]
    key = session["session_key"]
    require_creatable_key(owner_id, key)
    if Conversation.objects.filter(owner_id=owner_id, session_key=key).exists():
        key = f"{key[:100]}-imported-{uuid.uuid4().hex[:8]}"
    conversation = Conversation.objects.create(
        owner_id=owner_id,
        session_key=key,
        title=session.get("title", ""),
        provider=session.get("provider", ""),
        model=session.get("model", ""),
        system_prompt=session.get("system_prompt", ""),
        metadata=session.get("metadata") or {},
    )
    ids = {m["id"]: uuid.uuid4() for m in data["messages"]}
    files = _RestoredFiles(owner_id, uploader_key, saved)
    rows, artifacts = [], []
    for n, m in enumerate(data["messages"]):
        status = m["status"] if m["status"] != Message.Status.STREAMING else Message.Status.INTERRUPTED
        parts = m.get("parts") or []  # chat-session/1 has none; /2's and /3's were checked by the API
        if any(part["type"] == "file" for part in parts):
            where = f"messages[{n}] (id {m['id']})"
            parts = [
                files.part(part, f"{where}: parts[{k}]", ids[m["id"]]) if part["type"] == "file" else part
                for k, part in enumerate(parts)
            ]
        rows.append(
            Message(
                id=ids[m["id"]],
                conversation=conversation,
                parent_id=ids.get(m.get("parent_id") or ""),
                role=m["role"],
                content=m["content"],
                parts=parts,
                status=status,
                provider=m.get("provider", ""),
                model=m.get("model", ""),
                input_tokens=m.get("input_tokens"),
                output_tokens=m.get("output_tokens"),
                usage_estimated=m.get("usage_estimated", False),
                finish_reason=m.get("finish_reason", ""),
                error_code=m.get("error_code", ""),
                error_message=m.get("error_message", ""),
                created_at=m["created_at"],
                completed_at=m.get("completed_at"),
            )
        )
        artifacts += [
            Artifact(message_id=ids[m["id"]], conversation=conversation, **a) for a in m.get("artifacts", [])
        ]
    Message.objects.bulk_create(rows)
    Artifact.objects.bulk_create(artifacts)
    for message_id, attachment_ids in files.sent_by.items():
        store.bind(attachment_ids, conversation.pk, message_id)
    sessions_recount([conversation.pk])
    conversation.refresh_from_db()
    return conversation


class _RestoredFiles:
    """An import's files stored again: each export attachment id once (an edit that resent a file
    names it twice; the first message that sent it keeps it), the storage names kept in ``saved``
    (deleted if the import fails), a refusal named by message and part."""

    def __init__(self, owner_id: int | None, uploader_key: str, saved: list[str]) -> None:
        self.owner_id, self.uploader_key, self.saved = owner_id, uploader_key, saved
        self.rows: dict[str, Attachment] = {}
        self.sent_by: dict[uuid.UUID, list[str]] = {}

    def part(self, part: dict, where: str, message_id: uuid.UUID) -> dict:
        """The file part as stored, naming its new attachment."""
        row = self.rows.get(part["id"])
        if row is None:
            row = self._store(part, where)
            self.rows[part["id"]] = row
            self.sent_by.setdefault(message_id, []).append(str(row.id))
        file = InputFile(
            row.media_type,
            url=part.get("url", ""),
            filename=row.filename,
            size=row.size,
            detail=part.get("detail"),
            ref=str(row.id),
            sha256=row.sha256,
        )
        return file_part(file)

    def _store(self, part: dict, where: str) -> Attachment:
        try:
            row = store.save_bytes(
                part["data"],
                filename=part["filename"],
                declared_type=part["media_type"],
                owner_id=self.owner_id,
                uploader_key=self.uploader_key,
                source_url=part.get("url", ""),
                where=where,
            )
        except AttachmentRefused as exc:
            said = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
            raise AttachmentRefused(said, code=exc.code, status=exc.status, field=where) from None
        self.saved.append(row.storage_name)
        return row


@transaction.atomic
def conversation_greeting_store(
    *, owner_id: int | None, session_key: str, greeting: str, system: str | None = None
) -> bool:
    """A new session's opening words (a voice agent's greeting) as its first message, the
    assistant's, so the model sees them as context from the first turn on. A session that already
    has messages (a repeated session start) is left alone: ``False``."""
    lookup = {"owner_id": owner_id, "session_key": session_key}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is None:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(**lookup, system_prompt=system or "")
        except IntegrityError:  # created by a concurrent request: lock theirs
            conversation = Conversation.objects.select_for_update().get(**lookup)
    if conversation.messages.exists():
        return False
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=greeting,
        status=Message.Status.COMPLETE,
        completed_at=timezone.now(),
    )
    sessions_recount([conversation.pk])
    return True
