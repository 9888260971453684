"""Channels middleware: authenticate a WebSocket by API key (``X-API-Key`` or ``Authorization: Bearer``).

Runs inside AuthMiddlewareStack, so a session user is already in ``scope["user"]``;
a valid key replaces it with the key's owner; an invalid one is noted in
``scope["auth_error"]`` and the consumer accepts and closes with 4401.

A key in the URL (``?api_key=``) lands in proxy and access logs, so it is refused (4401) unless
``WS_API_KEY_IN_QUERY`` is on (off by default; for old clients while they move). Browsers, which
cannot set headers on a socket, use a ticket (``?ticket=``, ``POST /api/ws-ticket``) or the session.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.callers import AuthenticationError, caller_from_key, scope_client_ip
from accounts.models import ApiKey


def _raw_key(scope: dict) -> str | None:
    headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _query_key(scope: dict) -> str | None:
    return parse_qs(scope.get("query_string", b"").decode("latin1")).get("api_key", [None])[0]


KEY_IN_URL = AuthenticationError(
    "api_key_in_url",
    "An API key in the URL (?api_key=) is refused: it ends up in access logs. Send it as X-API-Key or "
    "Authorization: Bearer, or open the socket with a ticket (POST /api/ws-ticket, then ?ticket=).",
)


@database_sync_to_async
def _caller_user(raw: str, ip: str):
    caller = caller_from_key(raw, ip)
    user = (
        ApiKey.objects.select_related("owner").get(pk=caller.api_key_id).owner if caller.api_key_id else None
    )
    return caller, user


class ApiKeyWebsocketMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        raw = _raw_key(scope)
        in_query = _query_key(scope)
        if in_query is not None:
            if not settings.WS_API_KEY_IN_QUERY:
                return await self.app({**scope, "auth_error": KEY_IN_URL}, receive, send)
            raw = raw if raw is not None else in_query
        if raw is not None:
            try:
                caller, user = await _caller_user(raw, scope_client_ip(scope))
            except AuthenticationError as exc:
                scope = {**scope, "auth_error": exc}
            else:
                scope = {**scope, "caller": caller}
                if user is not None:
                    scope["user"] = user
        return await self.app(scope, receive, send)
