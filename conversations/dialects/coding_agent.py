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

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.callers import Caller
from conversations.dialects.access import mount_caller
from conversations.dialects.edge import dialect_setting, encoded, session_key, stream_response
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, error_response
from conversations.errors import TurnRejected
from conversations.events import ArtifactReady, Completed, Delta, Failed, Started, TurnEvent
from conversations.turns.jobs import follow
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start

NAME = "coding-agent"
CONTENT_TYPE = "application/x-ndjson"


# --- encoding (pure) -----------------------------------------------------------------------------
def line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


class CodingAgentEncoder:
    """One per response: remembers the provider and the first artifact for the closing line."""

    def __init__(self) -> None:
        self.provider = ""
        self.artifact: dict[str, str | None] | None = None

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, Started):
            self.provider = event.provider
        elif isinstance(event, Delta):
            return line({"type": "token", "content": event.text})
        elif isinstance(event, ArtifactReady):
            if self.artifact is None:
                self.artifact = {"language": event.language or None, "code": event.content.strip()}
        elif isinstance(event, Completed):
            return line({"type": "complete", "content": event.content, "artifact": self.artifact})
        elif isinstance(event, Failed):
            message = f"{self.provider}: {event.message}" if self.provider else event.message
            return line({"type": "error", "error": message, "message": message})
        return b""


# --- decoding ------------------------------------------------------------------------------------
def last_user_message(raw: Any) -> str:
    """The content of the last ``user`` entry of ``messages`` (a string, or text parts)."""
    if not isinstance(raw, list) or not raw:
        raise HttpError(422, "invalid_input", "messages must be a non-empty array.", field="messages")
    for index in range(len(raw) - 1, -1, -1):
        item = raw[index]
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list):
                texts = [p.get("text") for p in content if isinstance(p, dict) and "text" in p]
                content = "".join(texts) if all(isinstance(t, str) for t in texts) else None
            if not isinstance(content, str) or not content.strip():
                raise HttpError(
                    422,
                    "invalid_input",
                    f"messages[{index}].content must be a non-empty string.",
                    field="messages",
                )
            return content
    raise HttpError(
        422, "invalid_input", 'messages must contain a message with role "user".', field="messages"
    )


def turn_request(body: dict, caller: Caller) -> TurnRequest:
    field = Field(body)
    return TurnRequest(
        session_key=session_key(NAME, field.str("session_id")),
        content=last_user_message(body.get("messages")),
        owner_id=caller.owner_id,
        provider=dialect_setting(NAME, "PROVIDER") or None,
        model=dialect_setting(NAME, "MODEL") or None,
        rate_limit_key=caller.rate_limit_key,
    )


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def chat_stream(request: HttpRequest) -> HttpResponse:
    try:
        caller = await mount_caller(request, NAME)
        turn = await turn_start(turn_request(read_json_object(request), caller))
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    return stream_response(encoded(events, CodingAgentEncoder().encode), CONTENT_TYPE)


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("api/chat/stream", chat_stream),
    path("health", health),
]
