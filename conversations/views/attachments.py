"""Attachments over HTTP: ``POST /api/attachments`` (one file, multipart, its body streamed past
the request guard with a cap and a deadline of its own: :mod:`chatproject.body_guard`), its
metadata and removal at ``/api/attachments/{id}``, and its bytes at ``/api/attachments/{id}/content``
— always as a download (``Content-Disposition: attachment``, ``nosniff``), to who may read it: its
uploader's owner (owner-less callers share "no owner", as their sessions do)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.http import content_disposition_header

from accounts.callers import Caller
from conversations.attachments import store
from conversations.attachments.checks import AttachmentRefused
from conversations.db import run_db
from conversations.edge.http_errors import HttpError, error_response
from conversations.models import Attachment
from conversations.turns.parts import download_url
from conversations.views.auth import request_caller

UPLOAD_FIELD = "file"
CHUNK = 256 * 1024


def attachment_json(row: Attachment) -> dict:
    body = {
        "id": str(row.id),
        "media_type": row.media_type,
        "filename": row.filename,
        "size": row.size,
        "sha256": row.sha256,
        "width": row.width,
        "height": row.height,
        "created_at": row.created_at.isoformat(),
        "sent": row.message_id is not None,
        "download_url": download_url(str(row.id)),
    }
    if row.message_id is None:
        expires = row.created_at + timedelta(hours=settings.ATTACHMENT_UNSENT_HOURS)
        body["unsent_expires_at"] = expires.isoformat()
    if row.source_url:
        body["url"] = row.source_url
    return body


def _uploader_key(caller: Caller) -> str:
    return caller.rate_limit_key or (f"user:{caller.owner_id}" if caller.owner_id else "anonymous")


def _save_upload(request: HttpRequest, caller: Caller) -> Attachment:
    """Parse the multipart body (file parts go to temporary files, never whole into memory) and
    keep its one file."""
    content_type = request.content_type or ""
    if content_type != "multipart/form-data":
        raise HttpError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type or '(none)'} is not supported: send the file as multipart/form-data "
            f"in the field {UPLOAD_FIELD!r}.",
        )
    try:
        files, fields = request.FILES, request.POST
    except (MultiPartParserError, TooManyFieldsSent) as exc:
        raise HttpError(400, "malformed_multipart", f"The multipart body cannot be read: {exc}.") from None
    except RequestDataTooBig:
        raise HttpError(413, "payload_too_large", "The form fields are too large.") from None
    extra = sorted(set(fields) | (set(files) - {UPLOAD_FIELD}))
    if extra:
        raise HttpError(
            422,
            "unsupported_parameter",
            f"{extra[0]} is not read by this endpoint: send one file in the field {UPLOAD_FIELD!r}, nothing else.",
            field=extra[0],
        )
    uploads = files.getlist(UPLOAD_FIELD)
    if len(uploads) != 1:
        raise HttpError(
            422,
            "invalid_input",
            f"Send exactly one file in the field {UPLOAD_FIELD!r} ({len(uploads)} were sent).",
            field=UPLOAD_FIELD,
        )
    upload = uploads[0]
    try:
        with upload.open("rb") as handle:
            row = store.save_attachment(
                handle,
                size=upload.size,
                filename=upload.name or "",
                declared_type=upload.content_type,
                owner_id=caller.owner_id,
                uploader_key=_uploader_key(caller),
                where=UPLOAD_FIELD,
            )
    finally:
        upload.close()
    store.sweep_unsent()
    return row


async def attachments(request: HttpRequest) -> HttpResponse:
    """``POST /api/attachments``: store one file; 201 with its id, which a message's ``attachments`` names."""
    if request.method != "POST":
        return error_response(HttpError(405, "method_not_allowed", "POST a file here (multipart/form-data)."))
    try:
        caller = await request_caller(request)
        row = await run_db(_save_upload, request, caller)
    except HttpError as exc:
        return error_response(exc)
    except AttachmentRefused as exc:
        return error_response(exc)
    response = JsonResponse(attachment_json(row), status=201)
    response["Location"] = f"/api/attachments/{row.id}"
    return response


def _find(attachment_id: uuid.UUID, owner_id: int | None) -> Attachment:
    row = Attachment.objects.filter(store.readable(owner_id), id=attachment_id).first()
    if row is None:
        raise HttpError(404, "not_found", "No attachment with this id is yours to read.")
    return row


def _delete_unsent(attachment_id: uuid.UUID, owner_id: int | None) -> None:
    row = _find(attachment_id, owner_id)
    if row.message_id is not None:
        raise HttpError(
            409,
            "attachment_sent",
            "This attachment was sent in a message: it goes with its session (delete the session).",
        )
    store.delete_attachments(Attachment.objects.filter(id=row.id))


async def attachment_detail(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """``GET`` its metadata; ``DELETE`` an upload not yet sent."""
    try:
        caller = await request_caller(request)
        if request.method == "DELETE":
            await run_db(_delete_unsent, attachment_id, caller.owner_id)
            return HttpResponse(status=204)
        if request.method != "GET":
            raise HttpError(405, "method_not_allowed", "GET or DELETE an attachment.")
        row = await run_db(_find, attachment_id, caller.owner_id)
    except HttpError as exc:
        return error_response(exc)
    return JsonResponse(attachment_json(row))


async def attachment_content(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """``GET`` its bytes, as a download: never rendered by the browser as a page of this origin."""
    try:
        if request.method not in ("GET", "HEAD"):
            raise HttpError(405, "method_not_allowed", "GET an attachment's content.")
        caller = await request_caller(request)
        row = await run_db(_find, attachment_id, caller.owner_id)
        handle = await run_db(store.attachment_storage().open, row.storage_name, "rb")
    except HttpError as exc:
        return error_response(exc)
    except FileNotFoundError:
        return error_response(HttpError(410, "attachment_gone", "The attachment's file is no longer stored."))

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await run_db(handle.read, CHUNK):
                yield chunk
        finally:
            await run_db(handle.close)

    response = StreamingHttpResponse(chunks(), content_type=row.media_type)
    response["Content-Length"] = str(row.size)
    response["Content-Disposition"] = content_disposition_header(True, row.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    return response
