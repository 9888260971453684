"""The caller of an HTTP request, for the async (non-DRF) views."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.callers import AuthenticationError, Caller, anonymous_caller, caller_from_key, client_ip
from accounts.keys import raw_key_from_headers
from conversations.db import run_db
from conversations.edge.csrf import enforce_csrf
from conversations.edge.http_errors import HttpError


async def request_caller(request: HttpRequest) -> Caller:
    """API key first, then the session user (who must send the CSRF token), then anonymous if allowed."""
    ip = client_ip(request)
    try:
        raw = raw_key_from_headers(request.headers, lenient_bearer=bool(settings.ALLOW_ANONYMOUS))
        if raw is not None:
            return await run_db(caller_from_key, raw, ip)
        user = await request.auser()
        if user.is_authenticated:
            enforce_csrf(request)
            return Caller(owner_id=user.pk, ip=ip)
        return anonymous_caller(ip)
    except AuthenticationError as exc:
        raise HttpError(401, exc.code, exc.message) from None


async def request_owner_id(request: HttpRequest) -> int | None:
    return (await request_caller(request)).owner_id
