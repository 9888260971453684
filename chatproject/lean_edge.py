"""The streaming routes, served beside Django's per-request ASGI handler rather than through it.

A view a route table marks as streaming (:data:`conversations.routes.table.STREAMING_METHODS`: the
turn pipeline's endpoints, the resume streams) for the request's method is served here; every other
request goes to Django's handler unchanged. Routing is Django's own (the root URLconf resolves the
path, once), and so are the guarantees: the request passes through the same middleware chain, built
from ``MIDDLEWARE`` the way Django builds it (allowed hosts, SSL redirect and HSTS, security
headers, CORS and its preflight, sessions, CSRF, request ids, ``503`` for an unavailable database,
JSON error pages), view middleware and exception handling included, and its response is written by
Django's own ``send_response``.

What is left out is the per-request work these routes do not need: the ``request_started`` /
``request_finished`` signals and the per-request thread they run in (``ThreadSensitiveContext``),
and the spooled temporary file for a body the guard already capped (measured: 5 % less CPU per turn,
21 % less time to first token at 16 concurrent; docs/performance.md). Their one duty here — closing
a database connection a request opened in the thread-sensitive executor (a session cookie's user
lookup) — is kept: such a request closes it at its end, as ``request_finished`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import HttpRequest
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

from conversations.routes.table import STREAMING_METHODS
from conversations.telemetry import stages


class LeanHandler(ASGIHandler):
    """Django's ASGI handler for a request whose view is already known."""

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = request.lean_match  # type: ignore[attr-defined]
        request.resolver_match = match
        return match

    async def handle_resolved(self, scope: dict, receive: Any, send: Any, match: ResolverMatch) -> None:
        body = io.BytesIO()
        while True:  # the body guard has capped its size and its time already
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body.seek(0)
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body)
        if request is None:
            await self.send_response(error_response, send)
            error_response.close()
            return
        request.lean_match = match  # type: ignore[attr-defined]
        await self._respond(request, receive, send)

    async def _respond(self, request: HttpRequest, receive: Any, send: Any) -> None:
        """The response, written until done or until the client goes away (then cancelled), as
        Django's handler does it: the response in a task, the disconnect awaited beside it."""
        process = asyncio.create_task(self._process(request, send))
        watcher = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((process, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, process):  # the watcher first: it raises only RequestAborted
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
            session = getattr(request, "session", None)
            if session is not None and getattr(session, "accessed", False):
                await sync_to_async(close_old_connections)()  # the user lookup's connection

    async def _process(self, request: HttpRequest, send: Any) -> None:
        if stages.on:
            stages.mark("request")
        response = await self.run_get_response(request)
        try:
            await self.send_response(response, send)
        finally:
            response.close()  # request_finished: nothing of this loop's thread is open


class LeanEdge:
    """ASGI: the streaming routes to :class:`LeanHandler`, everything else to ``app`` (Django)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.handler = LeanHandler()

    def streaming_match(self, scope: dict) -> ResolverMatch | None:
        path, prefix = scope["path"], get_script_prefix(scope)
        if prefix and path.startswith(prefix):  # as Django's ASGIRequest finds its path_info
            path = path[len(prefix) :] or "/"
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return None
        methods = getattr(match.func, STREAMING_METHODS, ())
        return match if scope["method"] in methods else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            match = self.streaming_match(scope)
            if match is not None:
                await self.handler.handle_resolved(scope, receive, send, match)
                return
        await self.app(scope, receive, send)
