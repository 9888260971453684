"""Channels middleware: authenticate a WebSocket by API key (header, or ``?api_key=`` for browsers).

Runs inside AuthMiddlewareStack, so a session user is already in ``scope["user"]``;
a valid key replaces it with the key's owner; an invalid one is noted in
``scope["auth_error"]`` and the consumer accepts and closes with 4401.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from accounts.callers import AuthenticationError, caller_from_key
from accounts.models import ApiKey


def _raw_key(scope: dict) -> str | None:
    headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    return query.get("api_key", [None])[0]


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
        if raw is not None:
            client = scope.get("client") or ("", 0)
            try:
                caller, user = await _caller_user(raw, client[0])
            except AuthenticationError as exc:
                scope = {**scope, "auth_error": exc}
            else:
                scope = {**scope, "caller": caller}
                if user is not None:
                    scope["user"] = user
        return await self.app(scope, receive, send)
