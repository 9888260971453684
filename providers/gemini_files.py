"""Images and files in Gemini's shape: inline bytes up to a budget, the Files API beyond it.

Shapes as in ``PROVIDER_WIRE.md`` "Images and files on the wire". A user message with attachments
is a ``user`` content whose parts are its text (when not empty), then each attachment in order:

* an image or a PDF, inline: ``types.Part.from_bytes(data=…, mime_type=…)`` (``inlineData``; the
  SDK base64s the bytes), while the request's inline bytes stay within ``GEMINI_INLINE_MAX_BYTES``
  (:data:`DEFAULT_INLINE_MAX_BYTES`, counted over every message of the request, history
  included, in order: an attachment that would pass the budget is uploaded, a later smaller one
  may still go inline);
* beyond it, uploaded through the SDK's Files API (``client.aio.files.upload``: the resumable
  upload protocol, start then upload-and-finalize) and referenced as
  ``types.Part.from_uri(file_uri=…, mime_type=…)`` (``fileData``). A file still ``PROCESSING``
  is polled until ``ACTIVE`` (within the read timeout); ``FAILED`` refuses the turn;
* a text file: a text part, :func:`~providers.base.text_file_text` (its filename, then its text).

Uploads are remembered per provider instance by the bytes' SHA-256 and type for
:data:`UPLOAD_REUSE_SECONDS` (Google keeps a file 48 hours), so a history that carries a large
file again does not upload it on every turn. A file Google no longer has (its answer names the
file and says it may not exist) makes the adapter forget every upload and raise a retryable
:class:`~providers.base.Unavailable`: the turn's retry uploads it anew.

Gemini fetches no URL for these (``fetches_urls`` is False): the server hands the adapter the
bytes of a remote attachment.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from google import genai
from google.genai import types

from .base import TEXT, ChatMessage, InputFile, InvalidRequest, Unavailable, attachment_data, text_file_text

#: ``GEMINI_INLINE_MAX_BYTES`` by default: the raw bytes a request sends inline (20 MiB; their
#: base64 on the wire is a third larger, well within Gemini's limit on a request).
DEFAULT_INLINE_MAX_BYTES = 20 * 1024 * 1024
#: How long an upload is reused for the same bytes (Google deletes files after 48 hours).
UPLOAD_REUSE_SECONDS = 24 * 3600
#: How many uploads a provider instance remembers (the oldest forgotten first).
UPLOAD_MEMORY = 256
#: Between two looks at a file Google is still processing.
FILE_POLL_SECONDS = 0.5
#: Gemini's answer for a file it no longer has (403 ``PERMISSION_DENIED``).
_FILE_GONE = re.compile(r"\bFile \S+ or it may not exist", re.IGNORECASE)


def file_gone(message: str | None) -> bool:
    """Whether an error message is Gemini's for an uploaded file it no longer has."""
    return bool(message) and _FILE_GONE.search(message or "") is not None


@dataclass(frozen=True, slots=True)
class _Upload:
    uri: str
    mime_type: str
    until: float  # time.monotonic() after which it is uploaded again


class GeminiUploads:
    """The Files API uploads of one provider instance, remembered for reuse (module docstring)."""

    def __init__(self, client: genai.Client, provider: str, wait_seconds: float) -> None:
        self._client = client
        self._provider = provider
        self._wait = wait_seconds
        self._known: OrderedDict[str, _Upload] = OrderedDict()

    @property
    def remembered(self) -> int:
        return len(self._known)

    def forget(self) -> None:
        """Forget every upload (Google no longer has one of them): the next turn uploads again."""
        self._known.clear()

    async def part(self, file: InputFile, data: bytes) -> types.Part:
        """A ``fileData`` part for ``data``, uploaded unless a recent upload of the same bytes is known."""
        key = f"{file.media_type}:{hashlib.sha256(data).hexdigest()}"
        known = self._known.get(key)
        if known is None or known.until <= time.monotonic():
            uploaded = await self._client.aio.files.upload(
                file=io.BytesIO(data),
                config=types.UploadFileConfig(mime_type=file.media_type, display_name=file.filename or None),
            )
            uploaded = await self._active(uploaded)
            known = _Upload(
                uploaded.uri or "",
                uploaded.mime_type or file.media_type,
                time.monotonic() + UPLOAD_REUSE_SECONDS,
            )
            self._known[key] = known
            while len(self._known) > UPLOAD_MEMORY:
                self._known.popitem(last=False)
        self._known.move_to_end(key)
        return types.Part.from_uri(file_uri=known.uri, mime_type=known.mime_type)

    async def _active(self, file: types.File) -> types.File:
        """``file`` once Google has processed it (polled while ``PROCESSING``)."""
        deadline = time.monotonic() + self._wait
        while file.state == types.FileState.PROCESSING:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    self._provider,
                    f"the provider was still processing the uploaded file {file.name} after "
                    f"{self._wait:g}s: try again",
                )
            await asyncio.sleep(FILE_POLL_SECONDS)
            file = await self._client.aio.files.get(name=file.name or "")
        if file.state == types.FileState.FAILED:
            reason = (
                file.error.message if file.error is not None and file.error.message else "no reason given"
            )
            raise InvalidRequest(
                self._provider,
                f"the provider could not process the uploaded file {file.name} ({reason}): "
                "check that the file opens, or send another",
            )
        if not file.uri:
            raise Unavailable(
                self._provider, f"the provider gave the uploaded file {file.name} no URI: try again"
            )
        return file


async def attachment_parts(
    provider: str, messages: Sequence[ChatMessage], uploads: GeminiUploads, inline_max: int
) -> list[list[types.Part]]:
    """The parts of each message's attachments, in order (see the module docstring for which go
    inline and which are uploaded)."""
    parts: list[list[types.Part]] = []
    inline = 0
    for message in messages:
        own: list[types.Part] = []
        for file in message.attachments:
            if file.media_type == TEXT:
                own.append(types.Part(text=text_file_text(file)))
                continue
            data = attachment_data(provider, file)
            if inline + len(data) <= inline_max:
                inline += len(data)
                own.append(types.Part.from_bytes(data=data, mime_type=file.media_type))
            else:
                own.append(await uploads.part(file, data))
        parts.append(own)
    return parts
