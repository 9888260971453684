"""Who is calling: an API key's owner, a logged-in user, or anonymous (when ALLOW_ANONYMOUS).

One resolution for every edge (async views, DRF, WebSocket), so the same
credentials mean the same owner everywhere.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.conf import settings

from accounts.keys import api_key_authenticate


class AuthenticationError(Exception):
    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def rate_limit_key(api_key_id: int | None, owner_id: int | None, ip: str | None = None) -> str | None:
    """Whose turns a turn counts against in the rate limits: its API key's, else its user's, else
    its address's; None (no limit) when none is known. The one place this key is made."""
    if api_key_id is not None:
        return f"key:{api_key_id}"
    if owner_id is not None:
        return f"user:{owner_id}"
    return None if ip is None else f"ip:{ip}"


@dataclass(frozen=True, slots=True)
class Caller:
    owner_id: int | None
    api_key_id: int | None = None
    ip: str = ""

    @property
    def rate_limit_key(self) -> str:
        return rate_limit_key(self.api_key_id, self.owner_id, self.ip)


def caller_from_key(raw: str, ip: str) -> Caller:
    """A caller for an ``X-API-Key`` / Bearer value; the shared ``API_KEY`` means the anonymous owner."""
    shared = getattr(settings, "API_KEY", "")
    if shared and hmac.compare_digest(raw.encode(), shared.encode()):
        return Caller(owner_id=None, ip=ip)
    key = api_key_authenticate(raw)
    if key is None:
        raise AuthenticationError(
            "invalid_api_key",
            "The API key is unknown, malformed or revoked: create one with `manage.py apikey create`.",
        )
    return Caller(owner_id=key.owner_id, api_key_id=key.pk, ip=ip)


def anonymous_caller(ip: str) -> Caller:
    if not settings.ALLOW_ANONYMOUS or getattr(settings, "API_KEY", ""):
        raise AuthenticationError(
            "authentication_required", "Send an API key (X-API-Key or Authorization: Bearer), or log in."
        )
    return Caller(owner_id=None, ip=ip)


def forwarded_ip(peer: str | None, forwarded_for: str | None) -> str:
    """The client's address: the socket's peer, unless ``TRUSTED_PROXIES`` (how many proxies of
    ours stand in front) says to read that many hops back in ``X-Forwarded-For``. A client can
    write anything there itself, so only the hops our proxies appended are believed."""
    trusted = settings.TRUSTED_PROXIES
    if trusted and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-min(trusted, len(hops))]
    return peer or "unknown"


def client_ip(request) -> str:
    """:func:`forwarded_ip` of a Django request."""
    return forwarded_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def scope_client_ip(scope: dict) -> str:
    """:func:`forwarded_ip` of an ASGI scope (a WebSocket's handshake): the same address an HTTP
    request from that client gets, behind the same proxies."""
    peer = (scope.get("client") or (None,))[0]
    forwarded = [v for k, v in scope.get("headers", ()) if k.lower() == b"x-forwarded-for"]
    return forwarded_ip(peer, b",".join(forwarded).decode("latin1") if forwarded else None)
