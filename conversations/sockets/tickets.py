"""Short-lived WebSocket tickets: how a browser authenticates a socket it cannot send headers on.

A page asks for a ticket over HTTP (``POST /api/ws-ticket``) with its usual credentials (session
cookie with CSRF, or an API key) and opens any socket (``ws/chat/{key}/``, ``ws/ai-sdk/chat``)
with ``?ticket=<ticket>``: :class:`TicketWebsocketMiddleware` takes it before routing. A ticket is random (256 bits), lives at most
:data:`TICKET_SECONDS`, works once (taken atomically: Redis ``GETDEL``, or this process's store on
the embedded default), is bound to its caller and to the Origin of the page that asked for it,
and is kept only as its SHA-256 (a ticket that shows up in an access log is already spent).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from accounts.callers import AuthenticationError, Caller
from conversations.redis_client import redis_client

logger = logging.getLogger(__name__)

TICKET_SECONDS = 60
_KEY = "chat:ws-ticket:"
_local: dict[str, tuple[float, bytes]] = {}  # hash -> (expires at, ticket data), without Redis


@dataclass(frozen=True, slots=True)
class Ticket:
    owner_id: int | None
    api_key_id: int | None
    origin: str

    def caller(self, ip: str) -> Caller:
        return Caller(owner_id=self.owner_id, api_key_id=self.api_key_id, ip=ip)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def ticket_issue(caller: Caller, origin: str) -> str:
    """A new ticket for ``caller``, usable once from ``origin`` within :data:`TICKET_SECONDS`."""
    raw = secrets.token_urlsafe(32)
    data = orjson.dumps(asdict(Ticket(caller.owner_id, caller.api_key_id, origin)))
    if settings.REDIS_URL:
        await redis_client().set(_KEY + _hash(raw), data, ex=TICKET_SECONDS)
    else:
        now = time.monotonic()
        for key in [k for k, (expires, _) in _local.items() if expires <= now]:
            del _local[key]
        _local[_hash(raw)] = (now + TICKET_SECONDS, data)
    return raw


async def ticket_take(raw: str, origin: str) -> Ticket | None:
    """The ticket's caller, spending it; None when unknown, spent, expired or from another origin."""
    if not raw or len(raw) > 100:
        return None
    if settings.REDIS_URL:
        try:
            data = await redis_client().getdel(_KEY + _hash(raw))
        except Exception as exc:  # Redis down: the ticket cannot be checked, so it is refused
            logger.warning("WebSocket ticket store (Redis) unavailable: %s", type(exc).__name__)
            return None
    else:
        expires, data = _local.pop(_hash(raw), (0.0, None))
        data = data if expires > time.monotonic() else None
    if data is None:
        return None
    ticket = Ticket(**orjson.loads(data))
    return ticket if secrets.compare_digest(ticket.origin, origin) else None


def _query_ticket(scope: dict[str, Any]) -> str | None:
    return parse_qs(scope.get("query_string", b"").decode("latin1")).get("ticket", [None])[0]


class TicketWebsocketMiddleware:
    """``?ticket=``: the socket's caller is the ticket's (spent here); a bad ticket is ``auth_error``.

    Runs after the session and API-key middleware, so a ticket wins over both; a socket without a
    ticket keeps what they found. The consumers read ``scope["caller"]`` / ``scope["auth_error"]``
    and close an unauthenticated socket with 4401.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = _query_ticket(scope)
        if raw is not None:
            headers = {k.lower(): v for k, v in scope.get("headers", [])}
            origin = headers.get(b"origin", b"").decode("latin1")
            ticket = await ticket_take(raw, origin)
            ip = (scope.get("client") or ("unknown",))[0]
            scope = {k: v for k, v in scope.items() if k not in ("caller", "auth_error")}
            if ticket is None:
                scope["auth_error"] = AuthenticationError(
                    "invalid_ticket",
                    "The ticket is unknown, spent, expired or from another origin: get a new one "
                    "(POST /api/ws-ticket) right before opening the socket.",
                )
            else:
                scope["caller"] = ticket.caller(ip)
        return await self.app(scope, receive, send)
