"""The Gemini Files API of the fake upstream (as google-genai 3.6 uses it), and the image and file
parts of a ``generateContent`` request, checked and read into :class:`~.attachments.Received`.

Upload, the resumable protocol (``PROVIDER_WIRE.md`` "Images and files on the wire"):

1. ``POST /upload/{v1beta|v1}/files`` with ``X-Goog-Upload-Protocol: resumable``,
   ``X-Goog-Upload-Command: start``, ``X-Goog-Upload-Header-Content-Length`` and
   ``-Content-Type`` and an API key, body ``{"file":{"mimeType"|"mime_type","displayName"|…}}``
   → ``200``, an empty body and ``x-goog-upload-url`` (``…/upload/v1beta/files?upload_id=…``),
   ``x-goog-upload-status: active``;
2. ``POST`` that URL (no key needed) with ``X-Goog-Upload-Command: upload`` (or ``upload,
   finalize`` for the last chunk) and ``X-Goog-Upload-Offset`` = the bytes received so far →
   ``x-goog-upload-status: active``, then on finalize (the size must be the announced one)
   ``x-goog-upload-status: final`` and ``{"file":{"name":"files/…","uri","mimeType","state":"ACTIVE",…}}``.

Anything else is a 400 in Google's error shape. The bytes are kept (:class:`~.state.StoredFile`)
until :meth:`~.state.UpstreamState.reset` or ``forget_files``. ``GET /{v}/files/{id}`` answers the
file; after ``hold_files_processing(n)`` new files stay ``PROCESSING`` for ``n`` GETs. An unknown
file is Google's ``403 PERMISSION_DENIED`` "You do not have permission to access the File … or it
may not exist."

Parts (:func:`gemini_received`): a part holds one data field (``text``, ``inlineData``,
``fileData``, ``functionCall``…; two is Google's ``oneof`` 400) and no unknown key;
``inlineData`` needs a ``mimeType`` and base64 ``data`` (either alphabet: the SDK sends it
URL-safe); ``fileData`` a ``fileUri`` that is an uploaded file's (ACTIVE) or an http(s) URL.
camelCase and the SDK's snake_case keys are both read.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson

from .attachments import Received, decode_base64, remote
from .exchange import Exchange, WireError
from .gemini_errors import gemini_error
from .state import PendingUpload, StoredFile, UpstreamState

_FILE_URI = re.compile(r"/(?:v1beta|v1)/files/([a-z0-9-]+)$")
_UPLOAD_PATH = re.compile(r"^/upload/(v1beta|v1)/files$")
_GET_PATH = re.compile(r"^/(v1beta|v1)/files/([a-z0-9-]+)$")
#: Part fields (camelCase and snake_case) Gemini knows; the first group is its ``data`` oneof.
_DATA_FIELDS = {
    "text": "text",
    "inlineData": "inline_data",
    "fileData": "file_data",
    "functionCall": "function_call",
    "functionResponse": "function_response",
    "executableCode": "executable_code",
    "codeExecutionResult": "code_execution_result",
}
_OTHER_FIELDS = {
    "thought": "thought",
    "thoughtSignature": "thought_signature",
    "videoMetadata": "video_metadata",
    "mediaResolution": "media_resolution",
    "partMetadata": "part_metadata",
}
_KNOWN = {*_DATA_FIELDS, *_DATA_FIELDS.values(), *_OTHER_FIELDS, *_OTHER_FIELDS.values()}


def _invalid(message: str, status: int = 400) -> WireError:
    return WireError(status, gemini_error(status, message))


def _gone(file_id: str) -> WireError:
    return _invalid(f"You do not have permission to access the File {file_id} or it may not exist.", 403)


def _get(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    return mapping.get(camel, mapping.get(snake))


class GeminiFiles:
    """The Files API endpoints; the files live in the shared :class:`~.state.UpstreamState`."""

    def __init__(self, state: UpstreamState) -> None:
        self.state = state

    @staticmethod
    def handles(method: str, path: str) -> bool:
        return (method == "POST" and _UPLOAD_PATH.match(path) is not None) or (
            method == "GET" and _GET_PATH.match(path) is not None
        )

    async def serve(
        self, ex: Exchange, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> None:
        try:
            if method == "GET":
                version, file_id = _GET_PATH.match(path).groups()  # type: ignore[union-attr]
                stored = self.state.get_file(f"files/{file_id}", poll=True)
                if stored is None:
                    raise _gone(file_id)
                await ex.send_json(200, stored.to_json())
            elif "upload_id" in query:
                await self._chunk(ex, query["upload_id"], headers, raw)
            else:
                version = _UPLOAD_PATH.match(path).group(1)  # type: ignore[union-attr]
                await self._start(ex, version, headers, raw)
        except WireError as err:
            await ex.send_json(err.status, err.body)

    async def _start(self, ex: Exchange, version: str, headers: dict[str, str], raw: bytes) -> None:
        if not headers.get("x-goog-api-key"):
            raise _invalid(
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
                403,
            )
        if headers.get("x-goog-upload-protocol") != "resumable":
            raise _invalid("X-Goog-Upload-Protocol must be 'resumable'.")
        if headers.get("x-goog-upload-command") != "start":
            raise _invalid("X-Goog-Upload-Command must be 'start' to begin an upload.")
        size_header = headers.get("x-goog-upload-header-content-length", "")
        if not size_header.isdigit():
            raise _invalid("X-Goog-Upload-Header-Content-Length must be the file's size in bytes.")
        content_type = headers.get("x-goog-upload-header-content-type", "")
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise _invalid("Invalid JSON payload received.") from None
        meta = body.get("file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        mime_type = _get(meta, "mimeType", "mime_type") or content_type
        if not mime_type:
            raise _invalid(
                "The file's MIME type is required (file.mimeType or X-Goog-Upload-Header-Content-Type)."
            )
        if content_type and content_type != mime_type:
            raise _invalid(
                f"file.mimeType {mime_type!r} differs from X-Goog-Upload-Header-Content-Type {content_type!r}."
            )
        declared = _get(meta, "sizeBytes", "size_bytes")
        if declared is not None and str(declared) != size_header:
            raise _invalid(
                f"file.sizeBytes {declared} differs from X-Goog-Upload-Header-Content-Length {size_header}."
            )
        host = headers.get("host", "127.0.0.1")
        upload_id = secrets.token_urlsafe(12)
        pending = PendingUpload(
            version,
            mime_type,
            str(_get(meta, "displayName", "display_name") or ""),
            int(size_header),
            f"http://{host}",
        )
        self.state.start_upload(upload_id, pending)
        url = f"http://{host}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
        await ex.start(
            200,
            [
                (b"x-goog-upload-url", url.encode()),
                (b"x-goog-upload-status", b"active"),
                (b"x-goog-upload-chunk-granularity", b"8388608"),
                (b"content-length", b"0"),
            ],
        )
        await ex.finish()

    async def _chunk(self, ex: Exchange, upload_id: str, headers: dict[str, str], raw: bytes) -> None:
        pending = self.state.pending_upload(upload_id)
        if pending is None:
            raise _invalid(f"No upload in progress with upload_id {upload_id!r}.")
        commands = {c.strip() for c in headers.get("x-goog-upload-command", "").split(",") if c.strip()}
        if not commands or not commands <= {"upload", "finalize"}:
            raise _invalid("X-Goog-Upload-Command must be 'upload', 'finalize' or 'upload, finalize'.")
        offset = headers.get("x-goog-upload-offset", "")
        if "upload" in commands:
            if offset != str(len(pending.received)):
                raise _invalid(
                    f"X-Goog-Upload-Offset {offset!r} is not the {len(pending.received)} bytes received so far."
                )
            pending.received += raw
        if "finalize" not in commands:
            await ex.start(200, [(b"x-goog-upload-status", b"active"), (b"content-length", b"0")])
            await ex.finish()
            return
        if len(pending.received) != pending.size:
            raise _invalid(f"The upload has {len(pending.received)} bytes, not the {pending.size} announced.")
        file_id = secrets.token_hex(6)
        polls = self.state.processing_polls
        stored = StoredFile(
            name=f"files/{file_id}",
            uri=f"{pending.origin}/{pending.version}/files/{file_id}",
            mime_type=pending.mime_type,
            display_name=pending.display_name,
            data=bytes(pending.received),
            state="PROCESSING" if polls else "ACTIVE",
            polls_left=polls,
            created=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        )
        self.state.finish_upload(upload_id, stored)
        await ex.send_json(200, {"file": stored.to_json()}, [(b"x-goog-upload-status", b"final")])


def gemini_received(contents: Any, state: UpstreamState) -> list[Received]:
    """The images and files of a request's ``contents``, checked (module docstring)."""
    received: list[Received] = []
    for c, content in enumerate(contents if isinstance(contents, list) else []):
        parts = content.get("parts") if isinstance(content, dict) else None
        for p, part in enumerate(parts if isinstance(parts, list) else []):
            if not isinstance(part, dict):
                continue
            where = f"contents[{c}].parts[{p}]"
            for key in part:
                if key not in _KNOWN:
                    raise _invalid(
                        f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
                    )
            data = [camel for camel, snake in _DATA_FIELDS.items() if camel in part or snake in part]
            if len(data) > 1:
                raise _invalid(
                    f"Invalid value at '{where}' (oneof field 'data' is already set. Cannot set '{data[1]}')"
                )
            inline = _get(part, "inlineData", "inline_data")
            if inline is not None:
                received.append(_inline(inline, f"{where}.inline_data"))
            file_data = _get(part, "fileData", "file_data")
            if file_data is not None:
                received.append(_file_data(file_data, f"{where}.file_data", state))
    return received


def _inline(blob: Any, where: str) -> Received:
    if not isinstance(blob, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object.")
    for key in blob:
        if key not in ("data", "mimeType", "mime_type", "displayName", "display_name"):
            raise _invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    mime_type = _get(blob, "mimeType", "mime_type")
    if not isinstance(mime_type, str) or not mime_type:
        raise _invalid(f"* GenerateContentRequest.{where}.mime_type: MIME type is required.")
    raw = blob.get("data")
    data = decode_base64(raw) if isinstance(raw, str) else None
    if data is None:
        shown = raw[:20] if isinstance(raw, str) else raw
        raise _invalid(f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for {shown!r}")
    return Received(mime_type, data)


def _file_data(file_data: Any, where: str, state: UpstreamState) -> Received:
    if not isinstance(file_data, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object.")
    for key in file_data:
        if key not in ("fileUri", "file_uri", "mimeType", "mime_type", "displayName", "display_name"):
            raise _invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    uri = _get(file_data, "fileUri", "file_uri")
    mime_type = _get(file_data, "mimeType", "mime_type")
    if not isinstance(uri, str) or not uri:
        raise _invalid(f"* GenerateContentRequest.{where}.file_uri: Missing file URI.")
    uploaded = _FILE_URI.search(uri)
    if uploaded is not None:
        stored = state.get_file(f"files/{uploaded.group(1)}")
        if stored is None or stored.uri != uri:
            raise _gone(uploaded.group(1))
        if stored.state != "ACTIVE":
            raise _invalid(
                f"The File {uploaded.group(1)} is not in an ACTIVE state and usage is not allowed.", 400
            )
        return Received(mime_type or stored.mime_type, stored.data)
    if not remote(uri):
        raise _invalid(f"* GenerateContentRequest.{where}.file_uri: Invalid or unsupported file uri: {uri}")
    if not isinstance(mime_type, str) or not mime_type:
        raise _invalid(f"* GenerateContentRequest.{where}.mime_type: MIME type is required for a URL.")
    return Received(url=uri)
