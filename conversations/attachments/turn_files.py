"""A turn's attachments, between its decoded request and the model.

Before the opening write (a refusal stores nothing): :func:`examine_files` finds the uploaded ones
the caller may send, checks inline bytes (type, size, pixels), fetches a remote URL when the model's
provider cannot fetch it itself, and asks the provider whether the model takes each type
(``422 attachments_not_supported`` naming both, never a silent drop). After the rate limits,
:func:`keep_files` stores what came inline; after the opening write, :func:`bind_files` gives the
files to the message. :func:`load_files` reads the bytes the model is sent (this message's and the
history's), once per turn. A turn without attachments does none of this.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.conf import settings

from conversations.attachments import store
from conversations.attachments.checks import AttachmentRefused, Examined, examine
from conversations.db import run_db
from conversations.errors import AttachmentsNotSupported
from providers.base import ChatMessage, InputFile, Provider


@dataclass(slots=True)
class TurnFiles:
    """The new message's files as examined (inline bytes not yet stored), and every file's bytes
    known so far, by ``ref`` (a stored attachment's id) or by position for inline ones."""

    files: list[InputFile] = field(default_factory=list)
    context: tuple[ChatMessage, ...] | None = None  # the client's transcript, with fetched URLs filled
    unsent: list[str] = field(default_factory=list)  # uploaded ids this message sends for the first time

    @property
    def refs(self) -> list[str]:
        return [file.ref for file in self.files if file.ref]


def _where(n: int) -> str:
    return f"attachments[{n}]"


async def examine_files(
    files: Sequence[InputFile],
    *,
    owner_id: int | None,
    session_key: str,
    provider: Provider,
    model: str,
    context: tuple[ChatMessage, ...] | None = None,
) -> TurnFiles:
    """Resolve and check the new message's ``files`` (and the client transcript's), or raise."""
    earlier = [file for message in context or () for file in message.attachments]
    ids = [file.ref for file in (*files, *earlier) if file.ref and file.data is None]
    found = await run_db(store.sendable, ids, owner_id, session_key) if ids else {}
    out = TurnFiles()
    for n, file in enumerate(files):
        if file.ref and file.data is None:
            row = _sendable(found, file, _where(n))
            if row.message_id is None:
                out.unsent.append(file.ref)
            out.files.append(_stored(row, file))
            continue
        out.files.append(await _checked(file, _where(n), provider, model))
    if context is not None:
        out.context = tuple([await _checked_message(message, found, provider, model) for message in context])
    every = list(out.files) + [f for m in out.context or () for f in m.attachments]
    problem = provider.check_attachments(model, every)
    if problem:
        raise AttachmentsNotSupported(problem, field="attachments", provider=provider.name, model=model)
    return out


def _sendable(found: dict, file: InputFile, where: str):
    row = found.get(file.ref)
    if row is None:
        raise AttachmentRefused(
            f"{where}: no attachment {file.ref} of yours can be sent here (unknown, another caller's, or "
            "sent in another session): upload it with POST /api/attachments first.",
            code="attachment_not_found",
            status=404,
            field=where,
        )
    return row


def _stored(row, file: InputFile) -> InputFile:
    """An uploaded attachment as the model is sent it (its bytes loaded later, by ref)."""
    return InputFile(
        row.media_type,
        filename=row.filename,
        size=row.size,
        detail=file.detail,
        ref=file.ref,
        sha256=row.sha256,
        url=row.source_url,
    )


async def _checked_message(message: ChatMessage, found: dict, provider: Provider, model: str) -> ChatMessage:
    """An earlier message of a client transcript: its uploads looked up (an id the caller may not
    send is refused as the new message's is), its inline and remote files checked."""
    if not message.attachments:
        return message
    files = []
    for file in message.attachments:
        if file.ref and file.data is None:
            files.append(_stored(_sendable(found, file, "messages"), file))
        else:
            files.append(await _checked(file, "messages", provider, model))
    return replace(message, attachments=tuple(files))


async def _checked(file: InputFile, where: str, provider: Provider, model: str) -> InputFile:
    """Inline bytes checked; a remote URL kept as it is when the provider fetches it, else fetched
    (with SSRF protection) and checked as inline bytes."""
    if file.data is None and file.url and not provider.fetches_urls(model, file.media_type):
        file = await fetched(file, where)
    if file.data is None:
        return file
    examined: Examined = await run_db(
        examine,
        io.BytesIO(file.data),
        size=len(file.data),
        filename=file.filename,
        declared=file.media_type,
        where=where,
    )
    return replace(file, media_type=examined.media_type, size=len(file.data))


async def fetched(file: InputFile, where: str) -> InputFile:
    """A remote attachment's bytes, fetched safely (``conversations.attachments.remote``)."""
    from conversations.attachments.remote import RemoteFetchRefused, fetch_remote

    try:
        remote = await fetch_remote(file.url)
    except RemoteFetchRefused as exc:
        raise AttachmentRefused(
            f"{where}: {exc.message}", code=exc.code, status=exc.status, field=where
        ) from None
    declared = file.media_type if file.media_type not in ("", "image/*") else remote.content_type
    return replace(file, data=remote.data, size=len(remote.data), media_type=declared or "")


async def keep_files(turn_files: TurnFiles, *, owner_id: int | None, uploader_key: str) -> TurnFiles:
    """Store the new message's inline (and fetched) files; each then has its ``ref``."""
    kept: list[InputFile] = []
    for n, file in enumerate(turn_files.files):
        if file.ref or file.data is None:
            kept.append(file)
            continue
        row = await run_db(
            store.save_bytes,
            file.data,
            filename=file.filename,
            declared_type=file.media_type,
            owner_id=owner_id,
            uploader_key=uploader_key,
            source_url=file.url,
            where=_where(n),
        )
        kept.append(
            replace(
                file, ref=str(row.id), sha256=row.sha256, media_type=row.media_type, filename=row.filename
            )
        )
        turn_files.unsent.append(str(row.id))
    turn_files.files = kept
    return turn_files


async def bind_files(turn_files: TurnFiles, conversation_id: str, message_id: str) -> None:
    if turn_files.unsent:
        await run_db(store.bind, turn_files.unsent, conversation_id, message_id)


def _wanted(messages: Iterable[ChatMessage]) -> set[str]:
    return {
        file.ref for message in messages for file in message.attachments if file.ref and file.data is None
    }


async def load_files(
    messages: Sequence[ChatMessage], provider: Provider, model: str, known: dict[str, bytes] | None = None
) -> dict[str, bytes]:
    """The bytes of every stored file ``messages`` carry, by ref (``known`` ones not read again);
    remote files the provider cannot fetch are fetched, by URL."""
    known = dict(known or {})
    refs = _wanted(messages) - set(known)
    if refs:
        known.update(await run_db(_read_by_ids, sorted(refs)))
    for message in messages:
        for file in message.attachments:
            remote = not file.ref and file.data is None and file.url and file.url not in known
            if remote and not provider.fetches_urls(model, file.media_type):
                known[file.url] = (await fetched(file, "history")).data or b""
    return known


def _read_by_ids(ids: list[str]) -> dict[str, bytes]:
    names = dict(store.Attachment.objects.filter(id__in=ids).values_list("id", "storage_name"))
    data = store.read_bytes(names.values())
    return {str(attachment_id): data[name] for attachment_id, name in names.items() if name in data}


def without_missing(messages: Sequence[ChatMessage], loaded: dict[str, bytes]) -> tuple[ChatMessage, ...]:
    """``messages`` whose stored files are gone (deleted by an administrator, lost by the storage)
    carry a note naming each instead: the session goes on, and the model is told."""
    out = []
    for message in messages:
        gone = [f for f in message.attachments if f.ref and f.data is None and f.ref not in loaded]
        if gone:
            notes = [f"[attachment {f.filename or f.media_type!r} was deleted]" for f in gone]
            kept = tuple(f for f in message.attachments if f not in gone)
            text = "\n".join(([message.content] if message.content else []) + notes)
            message = replace(message, content=text, attachments=kept)
        out.append(message)
    return tuple(out)


def with_bytes(messages: Sequence[ChatMessage], loaded: dict[str, bytes]) -> tuple[ChatMessage, ...]:
    """``messages`` with each file's bytes filled in from ``loaded`` (by ref, or by URL)."""
    if not loaded:
        return tuple(messages)
    out = []
    for message in messages:
        if message.attachments:
            files = tuple(
                replace(file, data=loaded.get(file.ref or file.url, file.data)) if file.data is None else file
                for file in message.attachments
            )
            message = replace(message, attachments=files)
        out.append(message)
    return tuple(out)


def attachment_limit_problem(count: int) -> str | None:
    limit = settings.ATTACHMENT_MAX_FILES
    if count > limit:
        return f"{count} attachments were sent: at most {limit} go with one message (ATTACHMENT_MAX_FILES)."
    return None


def history_for(provider: Provider, model: str, history: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """The stored history as ``model`` can be sent it: a file of an earlier message that the model
    cannot take (the session was answered by another model before) becomes a note in that message's
    text naming it, rather than failing the turn or vanishing unseen. The new message's files were
    refused up front instead (:func:`examine_files`)."""
    out = []
    for message in history:
        if message.attachments and provider.check_attachments(model, message.attachments):
            kept, notes = [], []
            for file in message.attachments:
                if provider.check_attachments(model, (file,)):
                    name = file.filename or file.media_type
                    notes.append(
                        f"[attachment {name!r} ({file.media_type}) not shown: {model} cannot take it]"
                    )
                else:
                    kept.append(file)
            text = "\n".join(([message.content] if message.content else []) + notes)
            message = replace(message, content=text, attachments=tuple(kept))
        out.append(message)
    return tuple(out)
