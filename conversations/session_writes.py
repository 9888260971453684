"""Writes of a session outside its turns, each one thread hop and one transaction (HackSoft style:
entity first): create, export, import, the stored greeting. A turn's own writes are in
:mod:`conversations.turns.orm_writes`.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations.attachments.store import delete_files
from conversations.counters import sessions_recount
from conversations.models import Artifact, Attachment, Conversation, Message
from conversations.namespaces import require_creatable_key

# The export's format, written by every export; an import reads each of SESSION_EXPORT_FORMATS.
# 2 (issue 30): a message may carry ``parts`` (its tool calls, a tool message's results; left out
# when the content is its only part) and the role ``tool``. 1: text messages only.
SESSION_EXPORT_FORMAT = "chat-session/2"
SESSION_EXPORT_FORMATS = ("chat-session/1", SESSION_EXPORT_FORMAT)


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
            yield from _with_artifacts(chunk)
            chunk = []
    yield from _with_artifacts(chunk)


def _with_artifacts(chunk: list[tuple]) -> Iterator[dict]:
    if not chunk:
        return
    found: dict = {}
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
        yield _message_fields(row, found.get(row[0], []))


def conversation_export(conversation: Conversation) -> dict:
    """The session, its messages (every branch, with parent ids) and their artifacts, as plain JSON."""
    return {
        "format": SESSION_EXPORT_FORMAT,
        "session": _session_fields(conversation),
        "messages": list(_messages_in_order(conversation)),
    }


def conversation_export_stream(conversation: Conversation) -> Iterator[bytes]:
    """:func:`conversation_export` as JSON text written as it is read: memory stays flat for a session
    of any size (a chunk of messages at a time)."""
    head = orjson.dumps({"format": SESSION_EXPORT_FORMAT, "session": _session_fields(conversation)})
    yield head[:-1] + b', "messages": ['
    batch: list[bytes] = []
    first = True
    for message in _messages_in_order(conversation):
        batch.append(orjson.dumps(message))
        if len(batch) >= EXPORT_CHUNK:
            yield (b"" if first else b",") + b",".join(batch)
            batch, first = [], False
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
def conversation_import(*, owner_id: int | None, data: dict) -> Conversation:
    """A new session from an export (validated by the API). New ids; parents and order kept."""
    import uuid

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
    rows, artifacts = [], []
    for m in data["messages"]:
        status = m["status"] if m["status"] != Message.Status.STREAMING else Message.Status.INTERRUPTED
        rows.append(
            Message(
                id=ids[m["id"]],
                conversation=conversation,
                parent_id=ids.get(m.get("parent_id") or ""),
                role=m["role"],
                content=m["content"],
                parts=m.get("parts") or [],  # chat-session/1 has none; /2's were checked by the API
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
    sessions_recount([conversation.pk])
    conversation.refresh_from_db()
    return conversation


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
