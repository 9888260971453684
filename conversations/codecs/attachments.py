"""Files as the protocols carry them, read into :class:`~providers.base.InputFile` s: the readers
every codec that takes attachments shares (docs/attachments.md).

- a ``data:`` URL (``data:<type>[;…];base64,<payload>``) → its declared media type and its bytes,
  exactly as sent: the payload must be strict base64 (the standard alphabet, padded, no
  whitespace); anything else is a 422 naming the part, never a guess;
- a remote URL → ``https://`` with a host and no user name or password (plain ``http`` only while
  the test-only ``ATTACHMENT_FETCH_ALLOW_LOOPBACK`` is on), kept as sent: a provider that fetches
  URLs is sent it, else the turn service fetches it safely;
- an attachment id (OpenAI's ``file_id``) → the upload it names (``POST /api/attachments``), as
  ``InputFile("", ref=<id>)``: whether the caller may send it, and what it is, the turn service checks.

What a file *is* (its type sniffed from the bytes, its size and pixels) is checked by the turn
service for every protocol alike; a codec only reads the shape. Each problem is a
:class:`PartError` naming the part (``invalid_attachment`` for a data URL that cannot be read,
``url_not_allowed`` for a URL that is not fetched, ``invalid_input`` for any other shape) (``messages[0].content[1].image_url.url``): a codec raises it as
its 422 (:meth:`PartError.http`) or lists it among its problems.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from conversations.edge.http_errors import HttpError
from providers.base import InputFile

INVALID = "invalid_input"
BAD_DATA_URL = "invalid_attachment"  # a data URL whose bytes cannot be read (docs/attachments.md, Errors)
BAD_URL = "url_not_allowed"  # a remote URL that is not fetched: not https, credentials in it
URL_LENGTH = 4096  # characters of a remote attachment's URL (a presigned URL fits)
DETAILS = ("auto", "low", "high", "original")  # OpenAI's image detail levels
DATA_URL_SHAPE = "data:<media type>;base64,<base64 bytes>"


class PartError(ValueError):
    """A file part that cannot be read: ``where`` names it, ``what`` says what it must be."""

    def __init__(self, where: str, what: str, code: str = INVALID) -> None:
        super().__init__(f"{where} {what}.")
        self.where, self.what, self.code = where, what, code

    def http(self, field: str | None = None) -> HttpError:
        """The 422 a codec answers with (``field``: the request field it names, else the part)."""
        return HttpError(422, self.code, str(self), field=field or self.where)


def read_data_url(value: Any, where: str) -> tuple[str, bytes]:
    """A ``data:`` URL's declared media type (lower case, "" when it declares none) and its bytes."""
    if not isinstance(value, str) or not value[:5].lower() == "data:":
        raise PartError(where, f"must be a data URL ({DATA_URL_SHAPE})", BAD_DATA_URL)
    header, comma, payload = value[5:].partition(",")
    params = [p.strip() for p in header.split(";")]
    if not comma or len(params) < 2 or params[-1].lower() != "base64":
        raise PartError(
            where,
            f"must be a base64 data URL ({DATA_URL_SHAPE}): percent-encoded data URLs are not read",
            BAD_DATA_URL,
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PartError(
            where,
            "is not valid base64 after its comma (the standard alphabet, padded with =, no spaces "
            "or line breaks): send the file's bytes base64-encoded",
            BAD_DATA_URL,
        ) from None
    return params[0].lower(), data


def is_data_url(value: Any) -> bool:
    return isinstance(value, str) and value[:5].lower() == "data:"


def read_remote_url(value: Any, where: str) -> str:
    """A remote attachment's URL, checked for its shape (what it leads to is checked when fetched)."""
    if not isinstance(value, str) or not value:
        raise PartError(where, "must be a URL (https://…) or a data URL", BAD_URL)
    loopback = getattr(settings, "ATTACHMENT_FETCH_ALLOW_LOOPBACK", False) is True  # tests only
    schemes = ("https", "http") if loopback else ("https",)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parts, host = None, None
    if len(value) > URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise PartError(where, f"must be a URL of at most {URL_LENGTH} characters, without spaces", BAD_URL)
    if parts is None or parts.scheme.lower() not in schemes or not host:
        raise PartError(where, "must be an https:// URL (or a data URL with the file's bytes)", BAD_URL)
    if parts.username is not None or parts.password is not None:
        raise PartError(where, "must not carry a user name or password: send a URL without them", BAD_URL)
    return value


def read_attachment_id(value: Any, where: str) -> InputFile:
    """An upload's id (``POST /api/attachments``), as the file it names."""
    try:
        ref = str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        ref = None
    if ref is None:
        raise PartError(
            where,
            "must be an attachment id (the id POST /api/attachments returned, a UUID): this server "
            "does not know OpenAI's file ids",
        )
    return InputFile("", ref=ref)


DOWNLOAD_PATH = re.compile(r"^/api/attachments/([0-9a-fA-F-]{32,36})/content$")


def download_ref(url: Any) -> str | None:
    """The attachment id of a download link this server gave (``/api/attachments/{id}/content``, as
    the AI SDK's history shows a file), else None: sent back, it names the stored file again."""
    found = DOWNLOAD_PATH.match(url) if isinstance(url, str) else None
    return found.group(1) if found else None


def read_detail(value: Any, where: str) -> str | None:
    """OpenAI's image ``detail`` (None when absent)."""
    if value is None:
        return None
    if value not in DETAILS:
        raise PartError(where, f"must be one of {', '.join(DETAILS)}")
    return value


def read_filename(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PartError(where, "must be a string (the file's name)")
    return value


def inline_file(
    url: Any, where: str, *, media_type: str = "", filename: str = "", detail: str | None = None
) -> InputFile:
    """A part's file given by a data URL (its bytes) or a remote URL. ``media_type``: what the
    part declares besides the data URL's (the AI SDK's ``mediaType``); they must agree."""
    if is_data_url(url):
        declared, data = read_data_url(url, where)
        if media_type and declared and _base(declared) != _base(media_type):
            raise PartError(
                where,
                f"declares {declared} but the part's media type is {media_type}: send one type "
                "(the file's real one)",
            )
        kind = _base(media_type or declared)
        return InputFile(kind, data=data, filename=filename, size=len(data), detail=detail)
    return InputFile(_base(media_type), url=read_remote_url(url, where), filename=filename, detail=detail)


# Other names of one type (the turn service's check knows them too).
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}


def _base(media_type: str) -> str:
    base = media_type.split(";")[0].strip().lower()
    return ALIASES.get(base, base)
