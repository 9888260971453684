"""ASGI guard for HTTP requests: a cap on the headers, and a size cap and a deadline for the body,
before Django sees the request.

Headers over ``REQUEST_MAX_HEADER_BYTES`` get 431 (the HTTP parser may not cap them: httptools,
which production runs, does not).

A client that sends more than ``REQUEST_MAX_BYTES`` gets 413; one that takes
longer than ``REQUEST_BODY_TIMEOUT_SECONDS`` to send its body (a slow-loris) gets
408 and the connection is released. The body is then replayed to the app, and
later ``receive()`` calls go to the server, so disconnects are still seen.
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
