"""Seed 002, the Z.AI backend: ``POST /api/chat`` and ``GET /health``.

The seed's contract: ``{"messages", "model", "stream", "temperature", "max_tokens"}`` in; with
``stream: true`` SSE frames ``data: {"choices": [{"delta": {"content": …}}], "model": …,
"created": …}`` (Python ``json.dumps`` defaults: ``", "``/``": "`` separators, non-ASCII as
``\\uXXXX``) ending with ``data: {"data": "[DONE]"}``; otherwise one JSON completion; 400 with
validation details for invalid messages; 500 with a clear message when ``ZAI_API_KEY`` is missing;
``GET /health`` → ``{"status": "healthy", "zai_client_initialized", "timestamp"}``.
Where the seed is silent:

* **Provider**: ``zai`` whatever ``LLM_PROVIDER`` says (``COMPAT_ZAI_PROVIDER`` overrides it, e.g.
  ``demo`` offline); ``model`` is passed through (aliases apply), default ``ZAI_MODEL``. The
  frames' ``model`` is the model that answers; ``created`` is the request's Unix time.
* **Context**: the client's ``messages`` (its system messages become the session's system
  prompt). ``X-Session-Id`` groups the turns into one stored conversation; without it each
  request is a conversation of its own.
* **Defaults**: the seed server's, which its client relies on (it sends only ``messages`` and
  reads SSE): ``stream`` true, ``temperature`` 0.7, ``max_tokens`` 2048 when absent or null.
* **Non-streamed**: an OpenAI-style ``chat.completion`` object (``id``, ``created``, ``model``,
  ``choices[0].message``, ``finish_reason``, ``usage``).
* **Errors**: every input error is 400 (``{"error": {"code", "message", "details"?}}``); a turn
  that fails mid-stream sends ``data: {"error": {"code", "message"}}`` then the ``[DONE]`` frame;
  non-streamed, a JSON error (429 with ``Retry-After``, 504, 502).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, JsonResponse

from conversations.codecs.zai import DEFAULT_PROVIDER, NAME
from conversations.dialects.mount_settings import dialect_setting
from providers.registry import UnknownProvider, get_registry


def provider_name() -> str:
    return dialect_setting(NAME, "PROVIDER", DEFAULT_PROVIDER)


def model_name() -> str | None:
    return dialect_setting(NAME, "MODEL") or None


def provider_configured(name: str) -> bool:
    """Whether the provider has its key: the seed's ``zai_client_initialized`` (no call is made)."""
    try:
        return get_registry().config(name).configured
    except UnknownProvider:
        return False


def health_timestamp(now: datetime) -> str:
    """``2024-01-01T12:00:00.000Z``: UTC, milliseconds, as the seed's README shows."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "status": "healthy",
            "zai_client_initialized": provider_configured(provider_name()),
            "timestamp": health_timestamp(datetime.now(UTC)),
        }
    )
