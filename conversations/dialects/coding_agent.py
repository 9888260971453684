"""Seed 001, Claude-style coding agent: ``POST /api/chat/stream`` (NDJSON) and ``GET /health``.

The seed's contract: ``{"session_id", "messages"}`` in; NDJSON out, ``{"type":"token","content"}``
per piece, then ``{"type":"complete","content":<full text>,"artifact":{"language","code"}|null}``;
provider errors (429 quota included) as ``{"type":"error",…}`` lines with a descriptive message;
history kept per ``session_id``, capped by ``MAX_HISTORY_MESSAGES``; ``GET /health`` →
``{"status": "ok"}``. Its client shows ``data.error`` of an error line (``new Error(data.error)``).
Where the seed is silent:

* **Context**: the stored history of the ``session_id`` (its last ``MAX_HISTORY_MESSAGES``
  messages) is the context, as the seed's server-side memory; from ``messages`` only the last
  ``user`` message is taken as the new message (earlier entries are the client's copy of what the
  server already has). No ``session_id`` → a conversation of its own.
* **Artifact**: as the seed extracts it, the first fenced code block of the answer: ``language``
  the fence's (``null`` when the fence names none), ``code`` the block's content without the
  fences, stripped of surrounding whitespace.
* **Errors**: ``{"type":"error","error":<reason>,"message":<reason>}``, the reason being the
  provider's name and the taxonomy's message (``gemini: rate limited by the provider (HTTP 429);
  retry after 17s: wait and retry, …``), in ``error`` (what the seed's client shows) and in
  ``message``. An error after some tokens comes after them (the partial answer is kept in the
  history API). A request that cannot start a turn is a JSON error with its HTTP status (422,
  409, 503…), not a stream.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from conversations.codecs.coding_agent import NAME
from conversations.dialects.mount_settings import dialect_setting


def choice() -> tuple[str | None, str | None]:
    return dialect_setting(NAME, "PROVIDER") or None, dialect_setting(NAME, "MODEL") or None


async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
