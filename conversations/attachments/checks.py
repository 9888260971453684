"""What a file is, from its bytes: the type sniffed against the allowlist (PNG, JPEG, WebP, GIF,
PDF, plain text; never SVG or HTML), the name's or client's claimed type checked against it, an
image's dimensions checked (Pillow reads its header only: the decompression-bomb guard), each a
4xx naming the problem before anything is stored."""

from __future__ import annotations

import codecs
import mimetypes
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import filetype
from django.conf import settings
from PIL import Image

from conversations.errors import TurnRejected
from providers.base import ATTACHMENT_TYPES, IMAGE_TYPES, PDF, TEXT

SNIFF_BYTES = 8192  # what the type is read from (filetype needs 262; text is checked whole)
ALLOWED = "PNG, JPEG, WebP or GIF images, PDF, or plain text (UTF-8)"
# Markup a browser would run if it were ever served inline: refused even though it is text.
MARKUP = (b"<!doctype html", b"<html", b"<svg", b"<script", b"<?xml", b"<body", b"<head", b"<iframe")
# Claimed types that say nothing about the bytes (a browser's or client's default).
UNINFORMATIVE = {"", "application/octet-stream", "binary/octet-stream"}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": PDF}


class AttachmentRefused(TurnRejected):
    """A file that cannot be taken: the status and code say why, the message what to do."""

    def __init__(self, message: str, *, code: str, status: int = 422, field: str | None = None) -> None:
        details = {"field": field} if field else {}
        super().__init__(message, code=code, status=status, **details)


@dataclass(frozen=True, slots=True)
class Examined:
    media_type: str
    width: int | None = None
    height: int | None = None


def claimed_type(filename: str, declared: str | None) -> str:
    """The type a client claims: the declared one (a data URL's, a part's, a multipart header's),
    else the one the filename's extension says; "" when neither says anything."""
    declared = (declared or "").split(";")[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    if declared not in UNINFORMATIVE:
        return declared
    guessed = mimetypes.guess_type(filename or "")[0] or ""
    return ALIASES.get(guessed, guessed)


def examine(
    file: BinaryIO, *, size: int, filename: str = "", declared: str | None = None, where: str = "file"
) -> Examined:
    """The file's type and dimensions, or :class:`AttachmentRefused`. ``file`` is read from its
    start and left at its start."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise AttachmentRefused(
            f"{where} is {size} bytes, over the {limit}-byte limit (ATTACHMENT_MAX_BYTES): send a smaller file.",
            code="payload_too_large",
            status=413,
            field=where,
        )
    if size == 0:
        raise AttachmentRefused(
            f"{where} is empty: send the file's bytes.", code="invalid_attachment", field=where
        )
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    kind = filetype.guess(head)
    sniffed = ALIASES.get(kind.mime, kind.mime) if kind is not None else None
    if sniffed is None and _is_text(file):
        sniffed = TEXT
    file.seek(0)
    if sniffed not in ATTACHMENT_TYPES:
        what = sniffed or ("markup (HTML or SVG)" if _is_markup(head) else "not a type the server recognises")
        raise AttachmentRefused(
            f"{where}: its bytes are {what}; attachments must be {ALLOWED}.",
            code="unsupported_attachment_type",
            status=415,
            field=where,
        )
    claimed = claimed_type(filename, declared)
    if claimed.endswith("/*") and sniffed.startswith(claimed[:-1]):
        claimed = sniffed  # "image/*": any image (a remote image whose type was not said)
    if (
        claimed
        and claimed != sniffed
        and not (sniffed == TEXT and claimed.startswith("text/") and claimed not in _MARKUP_TYPES)
    ):
        raise AttachmentRefused(
            f"{where}: its bytes are {sniffed}, but its name or type says {claimed}: send it with its real "
            "type (nothing is taken on a mismatch).",
            code="attachment_type_mismatch",
            field=where,
        )
    if sniffed in IMAGE_TYPES:
        width, height = _dimensions(file, where)
        return Examined(sniffed, width, height)
    return Examined(sniffed)


_MARKUP_TYPES = {"text/html", "image/svg+xml", "text/xml", "application/xhtml+xml", "text/javascript"}


def _is_markup(head: bytes) -> bool:
    start = head.lstrip()[:512].lower()
    return any(start.startswith(tag) or tag in start for tag in MARKUP)


def _chunks(file: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    while chunk := file.read(size):
        yield chunk


def _is_text(file: BinaryIO) -> bool:
    """UTF-8 throughout, no NUL and no control characters but whitespace, and not markup."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first = True
    try:
        for chunk in _chunks(file):
            if first and _is_markup(chunk):
                return False
            first = False
            if b"\x00" in chunk or any(byte < 9 or 13 < byte < 32 for byte in chunk if byte < 32):
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _dimensions(file: BinaryIO, where: str) -> tuple[int, int]:
    """The image's width and height from its header (no pixel is decoded), within
    ``ATTACHMENT_MAX_PIXELS``; a header Pillow cannot read is refused too."""
    limit = settings.ATTACHMENT_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width = height = None
    except Exception:
        raise AttachmentRefused(
            f"{where}: the image cannot be read (a broken or truncated header): send a valid image.",
            code="invalid_attachment",
            field=where,
        ) from None
    finally:
        file.seek(0)
    if width is None or height is None or width * height > limit:
        shown = f"{width}x{height} pixels" if width else "over Pillow's decompression-bomb limit"
        raise AttachmentRefused(
            f"{where}: the image is {shown}, over the {limit}-pixel limit (ATTACHMENT_MAX_PIXELS): "
            "send a smaller image.",
            code="image_too_large",
            status=413,
            field=where,
        )
    return width, height
