"""Seed 000, Gemini behind an AI gateway: ``/api/chat``, ``/api/chat/stream``, ``/api/structured``.

The seed's contract: ``POST /api/chat {"message"}`` → ``{"reply": text}``; ``POST /api/chat/stream
{"message"}`` → ``text/event-stream`` of ``data: <raw text>`` frames; model alias ``fast``; a chatbot
with a system prompt and history; JSON output mode. Where the seed is silent:

* **Conversation**: the ``X-Session-Id`` header or a ``session_id`` body field names it (history and
  system prompt are kept, as the seed's ``Chatbot``); without one each request is a new
  conversation (the seed's endpoints are stateless). ``system_prompt`` in the body sets the
  conversation's system prompt, kept for its later turns; a conversation without one (none given
  yet, or empty) is answered with the seed ``Chatbot``'s default, "You are a helpful assistant"
  (not stored: the history API shows the prompt the client set).
* **Line breaks**: a text piece is framed by the SSE spec, one ``data:`` line per line, so every SSE
  parser rebuilds the exact text (the seed's literal ``f"data: {text}\\n\\n"`` makes SSE parsers
  drop everything after a line break). ``\\r\\n`` and ``\\r`` arrive as ``\\n``.
* **Errors**: a turn that fails ends the stream with ``event: error`` and JSON data
  ``{"code", "message"}`` (the seed cut the connection); ``/api/chat`` answers a JSON error
  (429 with ``Retry-After``, 504, 502).
* **Structured**: ``POST /api/structured {"prompt"}`` → the parsed JSON value, from a turn in JSON
  output mode whose message is ``"Respond with valid JSON only. " + prompt`` (as the seed's
  ``get_structured_response``); a reply that is not JSON → 502 ``invalid_json``.
* **Gateway headers**: the request headers named in ``COMPAT_FORWARD_HEADERS`` (e.g.
  ``Authorization``, ``X-Session-Token``; default none) are forwarded to the provider, plus
  ``X-App-Id: NXCODE_APP_ID`` or, without it, ``X-Workspace-Id: THREAD_ID`` when those are set.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

from accounts.keys import raw_key_from_headers
from conversations.codecs.gemini_gateway import NAME
from conversations.dialects.mount_settings import dialect_setting

DEFAULT_MODEL = "fast"

# Never forwarded, whatever COMPAT_FORWARD_HEADERS says: they describe this hop, or are our credentials.
UNFORWARDABLE = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "connection",
        "transfer-encoding",
        "accept-encoding",
        "cookie",
        "x-api-key",
        "x-csrftoken",
    }
)


def choice() -> tuple[str | None, str]:
    return dialect_setting(NAME, "PROVIDER") or None, dialect_setting(NAME, "MODEL", DEFAULT_MODEL)


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [str(name).strip() for name in value or () if str(name).strip()]


def forwarded_headers(request_headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's allowlisted headers and the gateway identity, as the seed's ``get_ai_client``."""
    headers: dict[str, str] = {}
    own_key = raw_key_from_headers(request_headers, lenient_bearer=True)  # a key of ours stays here
    for name in _names(getattr(settings, "COMPAT_FORWARD_HEADERS", ())):
        value = request_headers.get(name)
        if value and name.lower() not in UNFORWARDABLE and not (own_key and own_key in value):
            headers[name] = value
    app_id = getattr(settings, "NXCODE_APP_ID", "")
    workspace_id = getattr(settings, "THREAD_ID", "")
    if app_id:
        headers["X-App-Id"] = app_id
    elif workspace_id:
        headers["X-Workspace-Id"] = workspace_id
    return headers
