"""Layercode's signed webhooks: who may call ``/compat/layercode/agent`` (access mode ``signature``).

The platform signs every webhook with the agent's webhook secret:
``layercode-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``. A request is
accepted when one ``v1`` matches the MAC of the exact bytes received (compared in constant time)
and ``t`` is within :data:`TOLERANCE_SECONDS` of our clock, either way; otherwise 401, before the
body is parsed. The signature is the caller's credential, so no API key or ``ALLOW_ANONYMOUS`` is
needed, and the conversations stay in the mount's own namespace (no owner).

Without ``LAYERCODE_WEBHOOK_SECRET`` the mount is closed (401 naming it), except with ``DEBUG``,
where unsigned requests are accepted for local development (with a warning, once). A replayed
request passes this check within the window: the caller it yields names the exact request
(:class:`~conversations.codecs.layercode.SignedCaller`, a hash of the verified signature), so a
replay is answered from the original's answer, never by a second provider call
(:mod:`conversations.dialects.replays`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from accounts.callers import Caller, client_ip
from conversations.codecs.layercode import SignedCaller
from conversations.edge.http_errors import HttpError

logger = logging.getLogger(__name__)

HEADER = "layercode-signature"
SECRET_SETTING = "LAYERCODE_WEBHOOK_SECRET"
TOLERANCE_SECONDS = 300
HEADER_FORM = "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>"


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def signature_of(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value the platform sends for ``body`` (for tests and local tools)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature_of(body, secret, timestamp)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(t, [v1, …])`` of a header value, or a ``signature_malformed`` SignatureError."""
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        name, equals, value = part.strip().partition("=")
        if equals and name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif equals and name == "v1" and value:
            macs.append(value)
    if timestamp is None or not macs:
        raise SignatureError(
            "signature_malformed",
            f"The {HEADER} header is not of the form {HEADER_FORM}: send the header exactly as the "
            "Layercode platform does.",
        )
    return timestamp, macs


def verify(header: str | None, body: bytes, secret: str, *, now: float | None = None) -> tuple[int, str]:
    """``(t, the matching v1)`` when ``header`` signs ``body`` with ``secret``, recently;
    :class:`SignatureError` otherwise."""
    if not header:
        raise SignatureError(
            "signature_missing",
            f"The {HEADER} header is missing: this endpoint accepts only webhooks signed by the "
            f"Layercode platform ({HEADER_FORM}, keyed with the agent's webhook secret).",
        )
    timestamp, macs = parse_header(header)
    expected = signature_of(body, secret, timestamp).encode()
    if not any(hmac.compare_digest(expected, mac.encode("utf-8", "replace")) for mac in macs):
        raise SignatureError(
            "signature_invalid",
            f"The {HEADER} does not match the body: check that {SECRET_SETTING} is the webhook secret "
            "of this agent in the Layercode dashboard, and that nothing rewrites the body on its way.",
        )
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > TOLERANCE_SECONDS:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureError(
            "signature_expired",
            f"The {HEADER} timestamp is {abs(int(skew))} s {direction}, beyond the "
            f"{TOLERANCE_SECONDS} s window: sign each request when sending it, and check this "
            "server's clock (NTP).",
        )
    return timestamp, expected.decode()


def replay_key(mac: str) -> str:
    """What names one exact signed request: a hash of its verified signature (the same for every
    replay of it, whatever else the header carries; the signature itself is never stored)."""
    return hashlib.sha256(mac.encode()).hexdigest()


_warned_unsigned = False


def _warn_unsigned_once() -> None:
    global _warned_unsigned
    if not _warned_unsigned:
        _warned_unsigned = True
        logger.warning(
            "%s is not set: /compat/layercode/ accepts unsigned requests because DEBUG is on. "
            "Set it to the agent's webhook secret before exposing this server.",
            SECRET_SETTING,
        )


def webhook_caller(request: HttpRequest) -> Caller:
    """The caller of a Layercode webhook once its signature is verified (``HttpError`` 401 otherwise).

    The caller has no owner (the mount's namespace); the view charges rate limits per session. A
    signed request's caller names the request (:class:`SignedCaller`).
    """
    secret = getattr(settings, SECRET_SETTING, "")
    ip = client_ip(request)
    if not secret:
        if settings.DEBUG:
            _warn_unsigned_once()
            return Caller(owner_id=None, ip=ip)
        raise HttpError(
            401,
            "webhook_secret_not_set",
            f"{SECRET_SETTING} is not set, so the Layercode platform's signatures cannot be checked "
            "and this endpoint refuses every request: set it to the agent's webhook secret (Layercode "
            "dashboard), or DEBUG=true to accept unsigned requests in local development.",
        )
    try:
        body = request.body
    except RequestDataTooBig:
        raise HttpError(413, "payload_too_large", "The request body is too large.") from None
    try:
        timestamp, mac = verify(request.headers.get(HEADER), body, secret)
    except SignatureError as exc:
        raise HttpError(401, exc.code, exc.message) from None
    return SignedCaller(
        owner_id=None, ip=ip, replay_key=replay_key(mac), valid_until=timestamp + TOLERANCE_SECONDS
    )
