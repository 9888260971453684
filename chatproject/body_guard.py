"""ASGI guard for HTTP requests: a cap on the headers, and a size cap and a deadline for the body,
before Django sees the request.

Headers over ``REQUEST_MAX_HEADER_BYTES`` get 431 (the HTTP parser may not cap them: httptools,
which production runs, does not).

A client that sends more than ``REQUEST_MAX_BYTES`` gets 413; one that takes
longer than ``REQUEST_BODY_TIMEOUT_SECONDS`` to send its body (a slow-loris) gets
408 and the connection is released. The body is then replayed to the app, and
later ``receive()`` calls go to the server, so disconnects are still seen.

An upload (``POST /api/attachments``) is not buffered: its body streams on to Django (which spools
it to a temporary file past ``FILE_UPLOAD_MAX_MEMORY_SIZE``, never whole into memory) under a cap
of its own (``ATTACHMENT_MAX_BYTES`` and the multipart framing, checked against ``Content-Length``
before a byte is read and counted while reading) and a deadline of its own
(``ATTACHMENT_UPLOAD_TIMEOUT_SECONDS``). Past either, the client gets 413 or 408 and Django sees a
disconnect, so nothing is stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from django.conf import settings


async def _reject(send: Any, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


UPLOAD_PATH = "/api/attachments"
UPLOAD_FRAMING_BYTES = 64 * 1024  # the multipart boundaries and part headers around the file


def _is_upload(scope: dict) -> bool:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return scope.get("method") == "POST" and path.rstrip("/") == UPLOAD_PATH


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _stream_upload(app: Any, scope: dict, receive: Any, send: Any) -> None:
    """Pass the upload's body through as it arrives, counted against its cap and deadline."""
    limit = settings.ATTACHMENT_MAX_BYTES + UPLOAD_FRAMING_BYTES
    too_large = (
        f"The upload is over {limit} bytes ({settings.ATTACHMENT_MAX_BYTES} for the file "
        "(ATTACHMENT_MAX_BYTES) and the multipart framing): send a smaller file."
    )
    declared = _content_length(scope)
    if declared is not None and declared > limit:
        await _reject(send, 413, "payload_too_large", too_large)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.ATTACHMENT_UPLOAD_TIMEOUT_SECONDS
    size = 0
    refused = False

    complete = False

    async def counted() -> dict:
        nonlocal size, refused, complete
        if refused:
            return {"type": "http.disconnect"}
        if complete:  # the body is in: what follows is the server's (a disconnect), not timed
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            refused = True
            await _reject(
                send,
                408,
                "request_timeout",
                f"The upload took longer than {settings.ATTACHMENT_UPLOAD_TIMEOUT_SECONDS:g} seconds "
                "(ATTACHMENT_UPLOAD_TIMEOUT_SECONDS).",
            )
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                refused = True
                await _reject(send, 413, "payload_too_large", too_large)
                return {"type": "http.disconnect"}
            complete = not message.get("more_body", False)
        return message

    async def guarded_send(message: dict) -> None:
        if not refused:
            await send(message)

    await app(scope, counted, guarded_send)


class RequestBodyGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) for name, value in scope.get("headers", ()))
        if header_bytes > settings.REQUEST_MAX_HEADER_BYTES:
            await _reject(
                send,
                431,
                "headers_too_large",
                f"The request headers are {header_bytes} bytes, over {settings.REQUEST_MAX_HEADER_BYTES}: "
                "send fewer or smaller headers (cookies included).",
            )
            return
        if _is_upload(scope):
            await _stream_upload(self.app, scope, receive, send)
            return
        limit = settings.REQUEST_MAX_BYTES
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.REQUEST_BODY_TIMEOUT_SECONDS
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                await _reject(send, 408, "request_timeout", "The request body took too long to arrive.")
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _reject(send, 413, "payload_too_large", f"The request body is over {limit} bytes.")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
