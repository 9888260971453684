"""``POST /api/ws-ticket``: a single-use ticket for opening any of our WebSockets from a browser.

Browsers cannot set headers on a WebSocket, and a key in its URL lands in access logs: a page asks
here with its usual credentials (session cookie and CSRF token, or an API key) and opens
``ws/chat/{key}/`` or ``ws/ai-sdk/chat`` with ``?ticket=`` (see :mod:`conversations.sockets.tickets`).
``POST /api/ai-sdk/ws-ticket`` is the same view under its first name, kept for existing clients.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse

from conversations.edge.bodies import read_json_object
from conversations.edge.http_errors import HttpError, error_response
from conversations.errors import TurnRejected
from conversations.sockets.tickets import TICKET_SECONDS, ticket_issue
from conversations.views.auth import request_caller

logger = logging.getLogger(__name__)


async def ws_ticket(request: HttpRequest) -> HttpResponse:
    """A single-use ticket (60 s) for ``ws/…?ticket=``, bound to the caller and the page's Origin."""
    try:
        caller = await request_caller(request)
        origin = request.headers.get("Origin") or (read_json_object(request) if request.body else {}).get(
            "origin"
        )
        if not isinstance(origin, str) or not origin:
            raise HttpError(
                400,
                "origin_required",
                'Send the Origin header (browsers do) or {"origin": "https://your.app"}: the ticket works '
                "only from the page that opens the socket.",
                field="origin",
            )
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    try:
        ticket = await ticket_issue(caller, origin)
    except Exception as exc:  # Redis down
        logger.warning("WebSocket ticket store (Redis) unavailable: %s", type(exc).__name__)
        return error_response(
            HttpError(
                503, "ticket_store_unavailable", "Tickets cannot be issued right now: retry in a moment."
            )
        )
    return JsonResponse({"ticket": ticket, "expires_in": TICKET_SECONDS, "origin": origin})
