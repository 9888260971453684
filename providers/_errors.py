"""Translation of HTTP statuses and transport failures into the :mod:`providers.base` taxonomy.

Shared by every adapter, so the same upstream condition gives the same error whichever SDK saw it.
Messages are short and safe to show: they name the provider (the :class:`ProviderError` prefix),
say what happened and what to do, and never carry key material (upstream text is redacted and
truncated before it is quoted).
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .base import (
    AuthenticationFailed,
    InvalidRequest,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
)

logger = logging.getLogger("providers")

_SECRET_PATTERNS = re.compile(
    r"(?i)(bearer\s+)\S+|\b(sk-[A-Za-z0-9_-]{6,}|AIza[0-9A-Za-z_-]{10,}|[0-9a-f]{32}\.[A-Za-z0-9]{10,})"
)
_DETAIL_LIMIT = 200


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and anything key-shaped replaced, cut to a short length."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_PATTERNS.sub(lambda m: f"{m.group(1)}***" if m.group(1) else "***", text)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if any."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if lowered.get("retry-after-ms"):
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
    except ValueError:
        pass
    raw = lowered.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    provider: str,
    status: int,
    *,
    key_setting: str | None,
    retry_after: float | None = None,
    detail: str | None = None,
) -> ProviderError:
    """The taxonomy member for an HTTP error ``status`` (``detail`` must already be redacted)."""
    if status == 429:
        wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        return RateLimited(
            provider,
            f"rate limited by the provider (HTTP 429){wait}: wait and retry, or lower the request rate",
            status=status,
            retry_after=retry_after,
        )
    if status in (401, 403):
        fix = f"check {key_setting}" if key_setting else "check the provider's credentials"
        return AuthenticationFailed(
            provider, f"the provider rejected the credentials (HTTP {status}): {fix}", status=status
        )
    if status == 408:
        return Timeout(provider, "the provider timed out the request (HTTP 408): try again", status=status)
    if 400 <= status < 500:
        said = f": {detail.rstrip('.')}" if detail else ""
        return InvalidRequest(
            provider,
            f"the provider rejected the request (HTTP {status}{said}); check the model name and parameters",
            status=status,
        )
    return Unavailable(
        provider,
        f"the provider failed (HTTP {status}): try again later",
        status=status,
        retry_after=retry_after,
    )


def _types(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from each HTTP library that is loaded (httpx, its fork httpx2, aiohttp)."""
    found = []
    for module_name in ("httpx", "httpx2", "aiohttp"):
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transport_error(provider: str, exc: BaseException) -> ProviderError | None:
    """Map a timeout or network failure (anywhere in ``exc``'s cause chain) to Timeout / Unavailable.

    Returns ``None`` when ``exc`` is not a transport failure.
    """
    connect_timeouts = _types("ConnectTimeout") + _types("PoolTimeout")
    timeouts = _types("TimeoutException") + _types("ServerTimeoutError") + (TimeoutError,)
    network = _types("RequestError") + _types("ClientError") + (ssl.SSLError, ConnectionError, OSError)
    anyio = sys.modules.get("anyio")
    if anyio is not None:
        network += (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)
    for link in _chain(exc):
        if isinstance(link, connect_timeouts):
            return Timeout(
                provider, "could not connect in time: check the base URL, or raise LLM_CONNECT_TIMEOUT"
            )
        if isinstance(link, timeouts):
            return Timeout(
                provider,
                "no data from the provider within the read timeout: try again, or raise LLM_READ_TIMEOUT",
            )
        if isinstance(link, network):
            return Unavailable(
                provider,
                "the connection to the provider failed or was cut: check the base URL, or try again later",
            )
    return None


def unexpected_error(provider: str, exc: BaseException) -> ProviderError:
    """Last resort for an SDK failure we do not recognise; the original goes to the server log."""
    logger.warning("unexpected error from provider %s", provider, exc_info=exc)
    return Unavailable(
        provider, "unexpected failure talking to the provider: see the server log, then try again"
    )


def body_message(body: Any) -> str | None:
    """The ``message`` of an error body such as ``{"error": {"message": ...}}`` or ``{"message": ...}``."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return None
