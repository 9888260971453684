"""Creating, checking and revoking API keys.

A key looks like ``ck_<prefix>_<secret>``: the prefix finds the row, the
SHA-256 of the whole key is compared in constant time. Keys are 256-bit random,
so a fast hash is enough (a password hash would only slow every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiKey

KEY_PREFIX = "ck_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(*, owner, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret, which is shown once and never stored."""
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(owner=owner, name=name, prefix=prefix, secret_hash=_hash(raw))
    return key, raw


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key matching ``raw``, or None (malformed, unknown, wrong secret, revoked)."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    prefix, sep, _ = raw[len(KEY_PREFIX) :].partition("_")
    if not sep:
        return None
    key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(raw)):
        return None
    if key.revoked_at is not None or not key.owner.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, prefix: str) -> bool:
    return bool(
        ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


def raw_key_from_headers(headers, *, lenient_bearer: bool = False) -> str | None:
    """``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

    With ``lenient_bearer`` (anonymous use allowed), a Bearer value that is not one of our keys is
    ignored: OpenAI-style SDKs always send one, even when the server needs none.
    """
    raw = headers.get("X-API-Key")
    if raw:
        return raw.strip()
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    if lenient_bearer and not value.startswith(KEY_PREFIX) and not _is_shared_key(value):
        return None
    return value


def _is_shared_key(value: str) -> bool:
    shared = getattr(settings, "API_KEY", "")
    return bool(shared) and hmac.compare_digest(value.encode(), shared.encode())
