"""Who may call a seed mount: one rule per mount, ``COMPAT_<NAME>_ACCESS``.

* ``closed`` — every request but ``health`` is ``403 mount_closed`` (the production default).
* ``anonymous`` — anyone; their conversations live in the mount's own namespace
  (``<mount>:<id>``, no owner), reachable only through this mount: the conversation id is then
  the only secret, so clients should use unguessable ids. A personal API key, when sent, makes
  the conversations its owner's. The default with ``DEBUG``.
* ``api_key`` — ``X-API-Key`` / ``Authorization: Bearer``: a personal key (the conversations are
  its owner's) or the shared ``API_KEY`` (the mount's namespace). 004 (``chat-api``) follows its
  seed ("if set, ``X-API-Key`` is required"): whenever ``API_KEY`` is set, this is its rule —
  by default, and in place of ``anonymous``; only an explicit ``closed`` closes it then.
* ``signature`` — the platform signs each request (Layercode's webhooks); the mount verifies it.

Session cookies never authenticate a mount (its endpoints are CSRF-exempt, as their clients are
not browsers of this site), so a cross-site page cannot act as a logged-in user through one.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.callers import AuthenticationError, Caller, caller_from_key, client_ip
from accounts.keys import raw_key_from_headers
from conversations.db import run_db
from conversations.dialects.mount_settings import dialect_setting, dialect_variable
from conversations.dialects.signature import webhook_caller
from conversations.edge.http_errors import HttpError


def access_variable(dialect: str) -> str:
    return dialect_variable(dialect, "ACCESS")


def mount_access(dialect: str) -> str:
    """The mount's access rule: its setting, else the dialect's own default (layercode: its
    signature; chat-api: ``api_key`` when ``API_KEY`` is set), else ``anonymous`` with ``DEBUG``
    and ``closed`` without."""
    mode = dialect_setting(dialect, "ACCESS")
    if dialect == "chat-api" and settings.API_KEY and mode in ("", "anonymous"):
        return "api_key"  # the seed's rule: API_KEY set means the key is required (and opens it)
    if mode:
        return mode
    if dialect == "layercode":
        return "signature"
    return "anonymous" if settings.DEBUG else "closed"


async def mount_caller(request: HttpRequest, dialect: str) -> Caller:
    """The caller of a mount's request under its access rule (``HttpError`` when refused)."""
    mode = mount_access(dialect)
    ip = client_ip(request)
    if mode == "closed":
        raise HttpError(
            403,
            "mount_closed",
            f"/compat/{dialect}/ is closed: set {access_variable(dialect)}=anonymous to let anyone use "
            "it, or =api_key to require an API key (see docs/seeds.md).",
        )
    if mode == "signature":  # layercode only (settings refuse it elsewhere)
        return webhook_caller(request)
    raw = raw_key_from_headers(request.headers, lenient_bearer=mode == "anonymous")
    if raw is not None:
        try:
            return await run_db(caller_from_key, raw, ip)
        except AuthenticationError as exc:
            raise HttpError(401, exc.code, exc.message) from None
    if mode == "api_key":
        raise HttpError(
            401,
            "authentication_required",
            f"/compat/{dialect}/ needs an API key: send X-API-Key (the shared API_KEY or a personal key).",
        )
    return Caller(owner_id=None, ip=ip)
