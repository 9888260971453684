"""ASGI guard for URLs: a NUL character in the path or the query string is refused before routing.

PostgreSQL cannot hold a NUL in text: one that reached a lookup — a session key in the path
(``/api/sessions/a%00b``, ``ws/chat/a%00b/``), ``q=``, ``provider=``, ``model=`` — was an
unhandled 500, or a WebSocket handshake that crashed. No URL of ours takes a NUL, so it is refused
here, once, for every route of both protocols, rather than view by view:

- HTTP: ``400 nul_in_url`` (JSON, like every other error), nothing read or stored;
- WebSocket: accepted, told why in an error frame, then closed with ``4400`` (a code the client
  can read: a refusal before the accept reaches browsers as a bare failed handshake).

The server decodes the path into ``scope["path"]`` (``%00`` is a NUL there); the query string
stays raw in the scope (Django decodes it later), so its ``%00`` is looked for as written.
"""

from __future__ import annotations

from typing import Any

import orjson

from conversations.wire.websocket import ws_error

CLOSE_BAD_URL = 4400
CODE = "nul_in_url"


def nul_in_url(scope: dict) -> str | None:
    """Where the URL holds a NUL (``"path"``, ``"query string"``), or None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "query string"
    return None


def refusal_message(where: str) -> str:
    return (
        f"The URL's {where} contains a NUL character (%00), which nothing here can store or look "
        "up: remove it."
    )


class NulUrlGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        where = nul_in_url(scope) if scope["type"] in ("http", "websocket") else None
        if where is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            body = orjson.dumps({"error": {"code": CODE, "message": refusal_message(where)}})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            message = await receive()
            if message["type"] != "websocket.connect":
                return  # the client left before its handshake finished
            await send({"type": "websocket.accept"})
            frame = orjson.dumps(ws_error(CODE, refusal_message(where))).decode()
            await send({"type": "websocket.send", "text": frame})
            await send({"type": "websocket.close", "code": CLOSE_BAD_URL})
