"""The end of an HTTP request as the ASGI server sees it: callbacks that run once the app is done with it.

Django sends a response inside the request's ASGI call, so when that call returns the client has
either received the whole body or gone away: Django cancels the request when the client
disconnects, and a client that leaves while the middleware still handles the response never sees
the body start at all. ``on_request_end`` registers a callback for that moment (a streamed turn
detaches its listener, whatever state its body iterator was left in). The views themselves may
run in another task than the ASGI call (a sync-only middleware puts them behind ``async_to_sync``),
so the callbacks travel in a context variable, which every hop copies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

_callbacks: ContextVar[list[Callable[[], None]] | None] = ContextVar("request_end_callbacks", default=None)


def on_request_end(callback: Callable[[], None]) -> bool:
    """Run ``callback`` (on the event loop) when the current HTTP request ends; False outside one."""
    callbacks = _callbacks.get()
    if callbacks is None:
        return False
    callbacks.append(callback)
    return True


class RequestEndCallbacks:
    """ASGI middleware: runs the callbacks registered during an HTTP request once the app returns."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        callbacks: list[Callable[[], None]] = []
        token = _callbacks.set(callbacks)
        try:
            await self.app(scope, receive, send)
        finally:
            _callbacks.reset(token)
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    logger.exception("request end callback failed")
