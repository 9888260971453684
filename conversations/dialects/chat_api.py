"""Seed 004, the extensible AI chat API: ``POST /api/chat/stream`` and ``GET /health``.

The seed's contract: ``{"message", "previous_response_id"?}`` in; SSE ``event: delta`` /
``data: <raw text>`` per piece of the answer, then ``event: done`` / ``data: <response id>``; that
id, sent back as ``previous_response_id``, continues the conversation; OpenAI's Responses API by
default (``LLM_PROVIDER``, ``LLM_MODEL``); ``X-API-Key`` required when ``API_KEY`` is set; 20
requests per 60 s per caller. Its page reads the stream line by line, each line trimmed, and takes
the first ``data:`` line after an ``event:`` line as that event's payload. Where the seed is silent:

* **Deltas as the page shows them**: one ``event: delta`` per line of text, never empty, never
  ending in whitespace. A data line cannot hold a line break and the page trims every line, so
  line breaks are dropped and whitespace moves forward: a delta's trailing whitespace starts the
  next delta (the trim keeps leading whitespace), a line break between two words becomes a space
  there, and whitespace at the very end of the answer is dropped. The page shows the words intact;
  the stored answer (history API) keeps the exact text.
* **Response id**: the id of our stored answer (a UUID). Sent back, it continues that answer's
  conversation: with ``openai-responses`` the turn chains natively with the provider's own
  ``previous_response_id`` (stored on the conversation), with every other provider the stored
  history is the context. Conversations are linear: an older id continues the conversation from
  its latest answer. An id we did not hand out (or another owner's, or another dialect's) is
  ``404 previous_response_not_found``; no id starts a new conversation.
* **Errors**: a turn that fails (or is stopped) ends with ``event: error`` / ``data: <message>``,
  plain text on one line, instead of ``done``. A request that cannot start a turn is a JSON error
  ``{"error": {"code", "message"}}`` with its status (401, 404, 422, 429, 503…).
* **Provider, model, prompt**: ``COMPAT_CHAT_API_PROVIDER`` when set; else, as the seed, the
  Responses API (``openai-responses``) when ``OPENAI_API_KEY`` is set; else ``LLM_PROVIDER``.
  ``COMPAT_CHAT_API_MODEL``, else the seed's ``LLM_MODEL``, else the provider's default model.
  The system prompt is the seed's, "You are a helpful assistant. Be concise."
* **API key and rate limit**: who may call is the mount's access rule (:mod:`.access`; with
  ``API_KEY`` set, ``X-API-Key`` must carry it or a personal key, else ``401``). Turns are rate
  limited per caller (API key, user, else IP) by ``COMPAT_CHAT_API_RATE_LIMIT`` (default the
  seed's ``20/60 seconds``; empty for none) in place of ``RATE_LIMIT_TURNS``, in a window of
  their own: ``429 rate_limited`` with ``Retry-After`` (Redis, failing open; no ``REDIS_URL``, no
  limit). ``GET /health`` (``{"status": "ok"}``) needs no key.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from conversations.codecs.chat_api import NAME
from conversations.dialects.mount_settings import dialect_setting
from providers.registry import get_registry

RESPONSES_PROVIDER = "openai-responses"
DEFAULT_RATE_LIMIT = "20/60 seconds"


def provider_name() -> str | None:
    """``COMPAT_CHAT_API_PROVIDER``; else the Responses API when it has a key; else ``LLM_PROVIDER``."""
    chosen = dialect_setting(NAME, "PROVIDER")
    if chosen:
        return chosen
    return RESPONSES_PROVIDER if get_registry().config(RESPONSES_PROVIDER).configured else None


def choice() -> tuple[str | None, str | None, str]:
    """The mount's provider, model (``COMPAT_CHAT_API_MODEL``, else the seed's ``LLM_MODEL``) and rate."""
    model = dialect_setting(NAME, "MODEL") or getattr(settings, "LLM_MODEL", "") or None
    return provider_name(), model, getattr(settings, "COMPAT_CHAT_API_RATE_LIMIT", DEFAULT_RATE_LIMIT)


async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
