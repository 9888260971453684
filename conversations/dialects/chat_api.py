"""Seed 004, the extensible AI chat API: ``POST /api/chat/stream`` and ``GET /health``.

The seed's contract: ``{"message", "previous_response_id"?}`` in; SSE text deltas and a done
event carrying a response id that, sent back as ``previous_response_id``, continues the
conversation; ``LLM_PROVIDER`` picks the provider; ``X-API-Key`` required when ``API_KEY`` is set;
rate limited. Where the seed is silent:

* **Frames**: ``event: delta`` / ``data: {"delta":"…"}`` per piece, then ``event: done`` /
  ``data: {"response_id":"…"}``; a failed turn ends with ``event: error`` /
  ``data: {"code":"…","message":"…"}`` instead of ``done``. Compact JSON, UTF-8.
* **Response id**: the id of our stored answer (a UUID). Sent back, it continues that answer's
  conversation: with ``openai-responses`` the turn chains natively with the provider's own
  ``previous_response_id`` (stored on the conversation), with every other provider the stored
  history is the context. Conversations are linear: an older id continues the conversation from
  its latest answer. An id we did not hand out (or another owner's, or another dialect's) is
  ``404 previous_response_not_found``; no id starts a new conversation.
* **API key and rate limit**: as every edge of this project (:func:`conversations.views.auth.
  request_caller`): when ``API_KEY`` is set, ``X-API-Key`` must carry it (compared in constant
  time) or a personal key, else ``401`` (``authentication_required`` when missing,
  ``invalid_api_key`` when wrong); turns are rate limited per key (per IP when anonymous) by the
  turn service, ``429 rate_limited`` with ``Retry-After`` (Redis, failing open).
  ``GET /health`` (``{"status": "ok"}``) needs no key.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from conversations.dialects.edge import (
    dialect_setting,
    encoded,
    required_text,
    session_key,
    session_prefix,
    stream_response,
)
from conversations.dialects.sessions import asession_key_for_answer
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.http import Field, HttpError, error_response, read_json_object
from conversations.jobs import follow
from conversations.turns import TurnRequest, start_turn
from conversations.views.auth import request_caller

NAME = "chat-api"
CONTENT_TYPE = "text/event-stream"


# --- encoding (pure) -----------------------------------------------------------------------------
def sse_event(name: bytes, payload: dict) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def encode_event(event: TurnEvent) -> bytes:
    if isinstance(event, Delta):
        return sse_event(b"delta", {"delta": event.text})
    if isinstance(event, Completed):
        return sse_event(b"done", {"response_id": event.message_id})
    if isinstance(event, Failed):
        return sse_event(b"error", {"code": event.code, "message": event.message})
    return b""


# --- decoding ------------------------------------------------------------------------------------
async def conversation_of(owner_id: int | None, previous_response_id: str | None) -> str:
    if previous_response_id is None:
        return session_key(NAME, None)
    key = await asession_key_for_answer(
        owner_id=owner_id, message_id=previous_response_id, key_prefix=session_prefix(NAME)
    )
    if key is None:
        raise HttpError(
            404,
            "previous_response_not_found",
            "previous_response_id is not a response of this API: send the response_id of a done event, "
            "or omit it to start a new conversation.",
            field="previous_response_id",
        )
    return key


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def chat_stream(request: HttpRequest) -> HttpResponse:
    try:
        caller = await request_caller(request)
        field = Field(read_json_object(request))
        message = required_text(field, "message")
        key = await conversation_of(caller.owner_id, field.str("previous_response_id"))
        turn = await start_turn(
            TurnRequest(
                session_key=key,
                content=message,
                owner_id=caller.owner_id,
                provider=dialect_setting(NAME, "PROVIDER") or None,
                model=dialect_setting(NAME, "MODEL") or None,
                rate_limit_key=caller.rate_limit_key,
            )
        )
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    return stream_response(encoded(events, encode_event), CONTENT_TYPE)


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("api/chat/stream", chat_stream),
    path("health", health),
]
