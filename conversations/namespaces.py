"""Whose conversation a session key names: an owner's, or a seed mount's own callers'.

Callers without an owner (anonymous use, the shared ``API_KEY``) share owner ``None``. A seed
mount's callers keep their conversations under ``<mount>:<id>`` keys, reachable only through that
mount; the native API, ``/v1`` and the WebSocket never reach them for an owner-less caller, so
a key from one mount's clients (a Layercode call, a 004 chat) cannot be read, listed or continued
elsewhere. An owner (a user, a personal API key) reaches all of their own conversations.
"""

from __future__ import annotations

from django.conf import settings

from conversations.errors import NotFound, TurnRejected


def in_mount_namespace(session_key: str) -> bool:
    """Whether the key is one a seed mount hands out (``<mount>:<id>``)."""
    mount, colon, _ = session_key.partition(":")
    return bool(colon) and mount in settings.COMPAT_DIALECTS


def natively_reachable(owner_id: int | None, session_key: str) -> bool:
    """Whether the native API (history, turns, ``/v1``, WebSocket) may reach this session."""
    return owner_id is not None or not in_mount_namespace(session_key)


def require_native_key(owner_id: int | None, session_key: str) -> None:
    """Refuse, as if it did not exist, a mount's session asked for through the native API."""
    if not natively_reachable(owner_id, session_key):
        raise NotFound(
            f"No session with this key: keys starting with {session_key.partition(':')[0]}: belong to "
            "that /compat/ mount's callers and are reachable only through it."
        )


def require_creatable_key(owner_id: int | None, session_key: str) -> None:
    """Refuse a new session (created or imported) under a mount's key for a caller without an owner:
    the mount's next caller with that key would be handed the planted history."""
    if not natively_reachable(owner_id, session_key):
        reason = f"keys starting with {session_key.partition(':')[0]}: belong to that /compat/ mount."
        raise TurnRejected(
            f"session_key: {reason}", code="invalid_input", status=400, details={"session_key": [reason]}
        )
